"""The catalog document: what a community offers, who delivers it, and how to order it.

The YAML format is documented in ``docs/catalog.md``. These pydantic models are the
single definition of that format: the loader validates against them, the database
stores a snapshot of them, and the matcher and the conversation read them.

Every model forbids unknown keys: a misspelt ``keyword:`` is an error, not a silently
ignored field. Optional fields beyond the reference catalog have defaults, so the
reference file loads unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Ids appear in URLs, commands and logs: lower-case ASCII, digits, '-' and '_'."""


def _id_is_text(value: object) -> object:
    # YAML turns `2026-12-12` into a date, `on` into True and `7` into a number.
    if not isinstance(value, str):
        raise ValueError(f"must be text, but YAML read it as {value!r}: put it in quotes")
    return value


Id = Annotated[
    str,
    BeforeValidator(_id_is_text),
    StringConstraints(strip_whitespace=True, pattern=ID_PATTERN),
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Text = Annotated[str, AfterValidator(_not_blank)]
"""A human-readable, non-empty string (titles, names)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Mode(StrEnum):
    """How a unit delivers an item (the four service modes of the co-building model)."""

    POINT = "点单"  # a resident orders, the unit delivers
    ORDER = "订单式"  # the community collects a batch of needs and orders a slot
    PROXY = "代办式"  # staff or the unit do the paperwork on the resident's behalf
    GROUP = "组团式"  # several units deliver together; the lead unit owns the order

    @classmethod
    def _missing_(cls, value: object) -> Mode | None:
        # "点单式" is the usual spelling in the news story; accept it as 点单.
        if value == "点单式":
            return cls.POINT
        return None


class Contact(_Model):
    name: Text
    phone: str | None = None


class Grid(_Model):
    id: Id
    name: Text
    areas: list[Text] = Field(default_factory=list)
    """Buildings, streets or estates in the grid; a resident's building resolves to a grid."""


class Community(_Model):
    id: Id
    name: Text
    timezone: str = "Asia/Shanghai"
    grids: list[Grid] = Field(default_factory=list)
    duty_phone: str | None = None
    """The community's 24-hour duty phone, given to residents in an emergency."""

    @field_validator("duty_phone")
    @classmethod
    def _phone_number(cls, value: str | None) -> str | None:
        # It is read out to someone in trouble: a placeholder (待定, 有) would fail them.
        if value is not None and sum(c.isdigit() for c in value) < 3:
            raise ValueError('must be a phone number, e.g. "0773-2800000"')
        return value

    @model_serializer(mode="wrap")
    def _without_unused_duty_phone(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_defaults(handler(self), duty_phone=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value


class WeChatChannel(_Model):
    """Template message to the unit's bound members (customer-service message as fallback)."""

    type: Literal["wechat"]
    template_id: str | None = None


class WeComRobotChannel(_Model):
    """A WeCom group robot: markdown message to the group's webhook URL."""

    type: Literal["wecom_robot"]
    url_env: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    """Name of the environment variable holding the robot's URL (it embeds a secret key)."""


class WebhookChannel(_Model):
    """A signed JSON POST to the unit's own system (HMAC-SHA256 over the body)."""

    type: Literal["webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    """Name of the environment variable holding the signing secret."""


class LogChannel(_Model):
    """Write the notification to the service log: for demos and trials."""

    type: Literal["log"]


Channel = Annotated[
    WeChatChannel | WeComRobotChannel | WebhookChannel | LogChannel,
    Field(discriminator="type"),
]


class Unit(_Model):
    id: Id
    name: Text
    kind: Text
    contact: Contact | None = None
    channels: list[Channel] = Field(default_factory=list)
    """Where new orders are announced; empty means the ``log`` channel."""
    accept_within_hours: float = Field(default=24, gt=0)
    """Service-level agreement for accepting an order (drives reminders and 响应率)."""
    commitment: str | None = None
    """The unit's public promise in its co-building contract (shown on the 公示 page)."""


class DatedSlot(_Model):
    """One dated occurrence of an item (a class, a clinic day) with limited places: an
    entry of the item's ``sessions:`` in the catalog file (the format's name for it)."""

    id: Id
    title: str | None = None
    """What this occurrence is about (a lecture's topic), shown when residents choose."""
    start: dt.datetime
    end: dt.datetime | None = None
    capacity: int | None = Field(default=None, ge=1)
    """Places available; None means unlimited."""
    location: str | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> DatedSlot:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


class WeeklySlot(_Model):
    """A recurring weekly slot, e.g. every Tuesday 19:30–21:00 (妈妈夜校)."""

    weekday: Annotated[int, Field(ge=1, le=7)]
    """1 = Monday … 7 = Sunday."""
    start: dt.time
    end: dt.time
    capacity: int | None = Field(default=None, ge=1)
    location: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: object) -> object:
        # YAML reads an unquoted 19:30 as the sexagesimal number 1170; pydantic would
        # then take it as seconds and silently store 00:19:30.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError('write times in quotes, e.g. "19:30"')
        return value

    @field_validator("weekday", mode="before")
    @classmethod
    def _chinese_weekday(cls, value: object) -> object:
        # Staff write 周二 / 星期二 / 二 as readily as 2.
        if isinstance(value, str):
            day = re.sub(r"^(周|星期|礼拜)", "", value.strip())
            if day == "天":
                day = "日"
            if day in WEEKDAYS:
                return WEEKDAYS.index(day) + 1
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> WeeklySlot:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


SLOT_QUESTION: Final = "session"
"""The kind of question that picks one of an item's slots (and the id of that question
in a default form): the catalog format's name for it, also the key of its answer in
stored orders."""


class Question(_Model):
    """One question of an item's order form.

    Built-in kinds know how to ask, parse and validate natural answers
    (``session`` picks a slot: 周六上午; ``people``: 两个人; ``phone``: a mainland mobile number,
    remembered; ``building``: resolves the grid; ``notes``: free text). ``text`` and
    ``choice`` questions carry their own prompt.
    """

    id: Id
    kind: Literal["session", "people", "phone", "building", "name", "notes", "text", "choice"]
    ask: str | None = None
    """The question put to the resident; built-in kinds have a default."""
    required: bool = True
    choices: list[Text] = Field(default_factory=list)
    max_people: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _choices_for_choice(self) -> Question:
        if self.kind == "choice" and len(self.choices) < 2:
            raise ValueError("a choice question needs at least two choices")
        if self.kind in ("text", "choice") and not self.ask:
            raise ValueError(f"a {self.kind} question needs 'ask'")
        return self


REPLY_MAX = 100
"""Characters of a 常用回复: one line the resident reads in the completion notice."""

Reply = Annotated[Text, Field(max_length=REPLY_MAX)]


class Replies(_Model):
    """常用回复: a unit member picks one by number (``完成 码 1``) or in the portal
    instead of typing; the resident reads it with the news."""

    accept: list[Reply] = Field(default_factory=list, max_length=9)
    """On accepting (接单): 师傅今天下午上门，请留意电话."""
    complete: list[Reply] = Field(default_factory=list, max_length=9)
    """On completing (完成): 已修好，请试用."""

    def for_word(self, word: str) -> list[str]:
        """The replies of a chat word (接单, 完成); none for the others."""
        return {"接单": self.accept, "完成": self.complete}.get(word, [])


class Item(_Model):
    # The catalog format's keys stay as they are where a Python name differs from one
    # (``slots`` is ``sessions:`` in the file): read and written only by the format's name.
    model_config = ConfigDict(
        validate_by_alias=True, validate_by_name=False, serialize_by_alias=True
    )

    id: Id
    title: Text
    unit: Id
    co_units: list[Id] = Field(default_factory=list)
    mode: Mode = Mode.POINT
    category: Text
    keywords: list[Text] = Field(default_factory=list)
    synonyms: list[Text] = Field(default_factory=list)
    """Everyday wordings of this need (楼上渗水 for 水电维修); weighted below keywords."""
    examples: list[Text] = Field(default_factory=list)
    """Whole sentences a resident might send for this item; they teach the matcher."""
    description: str = ""
    confidential: bool = False
    """Visible only to the item's unit and admins (e.g. 廉情监督反映)."""
    grid_level: bool = False
    """Handled per grid (网格): the order carries the grid resolved from the building."""
    form: list[Question] | None = None
    """Questions asked before placing an order; None means the default form for the mode."""
    slots: list[DatedSlot] = Field(default_factory=list, alias="sessions")
    """Dated slots; the catalog file calls them ``sessions:`` (see ``model_config``)."""
    weekly: list[WeeklySlot] = Field(default_factory=list)
    next_steps: str | None = None
    """What happens after ordering, told to the resident on confirmation."""
    replies: Replies | None = None
    """常用回复 the unit picks when it accepts or completes an order of this item."""

    @model_serializer(mode="wrap")
    def _without_unused_replies(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Catalogs without replies keep the content hash they had before replies existed.
        return _without_defaults(handler(self), replies=None)

    @model_validator(mode="after")
    def _unique_nested_ids(self) -> Item:
        for name, ids in (
            ("sessions", [s.id for s in self.slots]),
            ("form", [q.id for q in self.form or []]),
        ):
            seen = {i for i in ids if ids.count(i) > 1}
            if seen:
                raise ValueError(f"duplicate {name} id(s): {', '.join(sorted(seen))}")
        return self


class Topic(_Model):
    """A safety-campaign topic residents can subscribe to (反诈, 防溺水 …)."""

    id: Id
    name: Text
    default_on: bool = True


FAQ_ANSWER_MAX = 600
"""Characters of a FAQ answer: one phone screen, read by elderly residents."""


class Faq(_Model):
    """A question residents ask about the community (office hours, where, how to),
    and the answer the bot gives; nothing is ordered."""

    id: Id
    questions: list[Text]
    """How residents ask it, in their own words; they teach the FAQ matcher."""
    answer: Text
    """What the bot replies: short, warm, plain Simplified Chinese."""
    unit: Id | None = None
    """The unit that owns the answer (keeps it true, is asked when it is not enough)."""

    @field_validator("questions")
    @classmethod
    def _some_question(cls, questions: list[str]) -> list[str]:
        if not questions:
            raise ValueError("needs at least one question, in the words residents use")
        return questions

    @model_validator(mode="after")
    def _short_answer(self) -> Faq:
        # Checked on the record, not the field: a field error would repeat the whole
        # answer in the message.
        if len(self.answer) > FAQ_ANSWER_MAX:
            raise ValueError(
                f"answer is {len(self.answer)} characters long; keep it to {FAQ_ANSWER_MAX}"
            )
        return self


class CatalogDocument(_Model):
    """A whole catalog file."""

    community: Community
    units: list[Unit]
    items: list[Item]
    topics: list[Topic] = Field(default_factory=list)
    lexicon: dict[Text, list[Text]] = Field(default_factory=dict)
    """Community words for the matcher, extending the shipped lexicon:
    ``{catalog term: [everyday words residents use for it]}``."""
    faq: list[Faq] = Field(default_factory=list)
    """Answers to questions about the community. Declared after ``units`` and
    ``items``: its validator checks references against them."""

    @field_validator("faq", mode="wrap")
    @classmethod
    def _faq_references(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[Faq]:
        """Unique ids, no id of an item, units that exist: checked on the raw entries
        and reported with the entries' own errors, so that one run lists them all."""
        problems = _faq_reference_problems(value, info.data)
        try:
            faq: list[Faq] = handler(value)
        except ValidationError as exc:
            if not problems:
                raise
            problems = [_as_init_error(e) for e in exc.errors()] + problems
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return faq

    @model_serializer(mode="wrap")
    def _without_unused_faq(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_defaults(handler(self), faq=[], ignore=[])

    @field_validator("lexicon")
    @classmethod
    def _lexicon_in_term_order(cls, lexicon: dict[str, list[str]]) -> dict[str, list[str]]:
        """Kept sorted by term: the order of the entries means nothing, and the
        catalog's version (a hash of the document) must not change when a tool or a
        person reorders them."""
        return dict(sorted(lexicon.items()))

    ignore: list[Text] = Field(default_factory=list)
    """Phrases that say nothing to the bot (好的收到, 测一下): the dialogue layer treats a
    message that is only one of them as no request, so it neither starts an order nor
    lands on the needs list. Staff grow it from the learning inbox
    (``catalog/learned.py``); ``catalog export`` writes it back here."""


def _faq_reference_problems(value: object, fields: dict[str, Any]) -> list[InitErrorDetails]:
    if not isinstance(value, list):
        return []
    units = fields.get("units")
    unit_ids = {u.id for u in units} if isinstance(units, list) else None
    item_at = {item.id: i for i, item in enumerate(fields.get("items") or [])}
    problems: list[InitErrorDetails] = []

    def problem(loc: tuple[int | str, ...], message: str, given: object) -> None:
        error = PydanticCustomError("faq_reference", message)
        problems.append(InitErrorDetails(type=error, loc=loc, input=given))

    first: dict[str, int] = {}
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            continue
        fid, unit = entry.get("id"), entry.get("unit")
        if isinstance(fid, str):
            fid = fid.strip()
            if fid in first:
                problem(
                    (index, "id"),
                    f"duplicate faq id '{fid}' (first used at faq[{first[fid]}])",
                    fid,
                )
            else:
                first[fid] = index
            if fid in item_at:
                problem(
                    (index, "id"),
                    f"'{fid}' is already the id of items[{item_at[fid]}]: "
                    "FAQ entries and items need different ids",
                    fid,
                )
        if isinstance(unit, str) and unit_ids is not None and unit.strip() not in unit_ids:
            unit = unit.strip()
            problem((index, "unit"), f"unknown unit '{unit}'{_suggest(unit, unit_ids)}", unit)
    return problems


def _suggest(word: str, choices: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _as_init_error(error: Any) -> InitErrorDetails:
    """A reported error in the form errors are raised in, to report it with others."""
    details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


def _without_defaults(data: Any, **defaults: object) -> Any:
    """Leave fields added after the first catalogs out of the canonical form while
    they hold their default. ``Catalog.version`` hashes that form: a catalog that does
    not use them keeps the version it had before they existed, so stored versions
    stay valid without recomputing them (see migration 0011)."""
    if isinstance(data, dict):
        for name, default in defaults.items():
            if name in data and data[name] == default:
                del data[name]
    return data
