"""Settings from the environment (and an optional ``.env`` file), checked at start-up.

Every setting is an environment variable of the same name in upper case. A bad value
stops the service with one line naming the variable, the value and what is expected,
instead of a failure later in some request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from catalog.thresholds import Thresholds

OFFICIAL_API_BASE = "https://api.weixin.qq.com"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def check_aes_key(value: str) -> str:
    """WeChat shows a 43-character key: base64 of 32 bytes without the final '='."""
    try:
        raw = base64.b64decode(value + "=", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(value) != 43 or len(raw) != 32:
        raise ValueError("must be the 43-character EncodingAESKey shown in the WeChat console")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """``10.0.0.1, 10.1.0.0/16, ::1``: single addresses are one-address networks."""
    networks = []
    for part in value.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"'{entry}' is not an IP address or CIDR block; expected e.g. 127.0.0.1,10.0.0.0/8"
            ) from None
    return tuple(networks)


class ConfigError(Exception):
    """Configuration is invalid; the message names each bad variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = "sqlite+aiosqlite:///./order-menu.db"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    """Seconds work waits for the database before its request is answered 503: for a
    free pooled connection, and on SQLite for the write lock (its busy timeout)."""
    catalog_path: Path | None = None
    """None: the demo catalog shipped in the package."""
    communities_file: Path | None = None
    """Several communities in one deployment (see bot/communities.py); None: one."""

    wechat_token: str | None = None
    """None: a development token is generated, stored and printed at start-up."""
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_encoding_aes_key: str | None = None
    """Set it to turn on safe mode (AES-encrypted messages)."""
    wechat_api_base: str = OFFICIAL_API_BASE
    wechat_replay_window: float = Field(default=300.0, gt=0, le=86400)
    """Seconds a request's timestamp may be off from now; older ones are replays."""
    wechat_max_body: int = Field(default=65536, ge=1024, le=10 * 1024 * 1024)
    """Largest request body accepted on /wechat, in bytes (WeChat's are a few KiB)."""
    reply_deadline: float = Field(default=4.0, gt=0, lt=5)
    """Seconds a reply may take before the bot answers "success" and sends it later
    through the customer-service API (WeChat waits 5 s)."""
    deferred_message_lease: float = Field(default=60.0, gt=0, le=3600)
    """Seconds a message answered "success" (its reply was late) has to finish before
    another process runs it again: longer than any handler takes."""
    conversation_timeout: int = Field(default=1800, ge=60)
    """Seconds of silence after which a half-finished conversation is forgotten."""

    remind_after_hours: float = Field(default=4.0, gt=0)
    """Working hours after dispatch without acceptance before the unit is reminded."""
    escalate_after_hours: float = Field(default=8.0, gt=0)
    """Working hours after dispatch without acceptance before staff are alerted."""
    rate_ask_after_hours: float = Field(default=2.0, gt=0)
    """Hours after completion before an unrated order's resident is asked to rate it."""
    followup_again_days: int = Field(default=0, ge=0, le=30)
    """Days after completion of the second 回访 (the resident asked once more whether it
    is still solved); 0 turns it off. At most 30: the bot links what a resident says to
    orders of the last 30 days."""
    waitlist_hold_hours: float = Field(default=2.0, gt=0)
    """Hours a freed place is held for the first resident on the waiting list before it
    is offered to the next (counted from when the offer may be sent: after quiet hours)."""
    session_reminder_time: str = "20:00"
    """Local time, the evening before a booked slot, of the reminder to the resident (the
    variable keeps its published name, SESSION_REMINDER_TIME)."""
    digest_time: str = "09:00"
    """Local time of the daily digest to staff (stuck orders, notifications not
    delivered); after the quiet hours if it falls in them. Empty: no digest."""
    working_hours: str = "09:00-18:00"
    """The working day for SLA clocks (Monday-Friday and 调休 days, not holidays)."""
    quiet_hours: str = "22:00-08:00"
    """When residents are not messaged: messages wait until the quiet hours end."""
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    """Delivery attempts of a notification before it is marked failed for staff."""
    leader_interval: float = Field(default=2.0, gt=0, le=60)
    """Seconds between a standby process's tries to take over the scheduled jobs."""
    scheduler_interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between two polls of due reminders and notifications."""
    catalog_refresh_interval: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between two checks for a catalog imported by another process."""
    broadcast_rate: float = Field(default=20.0, gt=0, le=1000)
    """Broadcast messages sent per second (WeChat answers 45009 when it is too much)."""
    broadcast_lease: float = Field(default=60.0, gt=0)
    """Seconds after which a delivery left 'sending' (its process died) is settled as
    'unknown'. Longer than any one send, retries included."""
    mass_send_quota: int = Field(default=4, ge=0, le=31)
    """Mass messages (群发) a follower receives a calendar month: 4 for a certified
    service account. 0 turns mass send off: campaigns then reach only followers
    inside their 48-hour window."""
    mass_send_batch: int = Field(default=10_000, ge=2, le=10_000)
    """Openids one mass-send call carries (WeChat allows 2 to 10,000)."""
    evaluation_weights: str = "0.1,0.5,0.4"
    """Weights of 响应率, 解决率, 满意率 in the evaluation's composite score."""
    evaluation_min_sample: int = Field(default=5, ge=1, le=1000)
    """Orders a rate needs (in a month, or the period shown) before it is given and the
    unit ranked; fewer show 样本不足: one order would make a rate 0 % or 100 %."""
    complete_within_hours: float = Field(default=27.0, gt=0)
    """Working hours after dispatch by which an order should be completed (three
    working days): until then an open order does not count against 解决率."""
    wechat_resident_template_id: str | None = None
    """Template for messages to residents outside WeChat's 48-hour window."""

    retain_contact_days: int = Field(default=180, ge=1, le=3650)
    """Days after an order closed before its phone, address and free text are
    anonymised (the order stays in the figures); likewise a resident's own contact
    details after their last message, once none of their orders holds any."""
    retain_photo_days: int = Field(default=90, ge=1, le=3650)
    """Days after an order closed before the photos and places sent about it go."""
    retain_need_text_days: int = Field(default=365, ge=1, le=3650)
    """Days before the text of a message that matched no service (需求清单, 学习箱) goes."""
    retain_message_days: int = Field(default=365, ge=1, le=3650)
    """Days before closed 转人工 threads, residents' remarks and visit notes lose their text."""

    match_matched: float = Field(default=Thresholds.matched, gt=0, lt=1)
    """Matcher confidence needed to answer with one item."""
    match_ambiguous: float = Field(default=Thresholds.ambiguous, gt=0, lt=1)
    """Matcher confidence needed to offer numbered choices rather than "nothing matched"."""
    match_lead: float = Field(default=Thresholds.lead, gt=0, le=1)
    """For one item, the runner-up must score below this share of the top."""

    dev_tools: str = "auto"
    """The chat simulator and /dev/outbox: ``auto`` (for a community on a generated
    development token, without a WeChat API account), ``on`` or ``off``. They sign
    messages with the account's token, so never ``on`` for a real account."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None
    """Where people reach this service from outside (for links in messages)."""
    trusted_proxies: str = ""
    """Comma-separated addresses or CIDR blocks of the reverse proxies in front of the
    service. Only a request whose direct peer is one of them has its
    ``X-Forwarded-For`` believed (see bot/web/clients.py); empty: the header is
    ignored and the peer is the client."""
    poster_font: Path | None = None
    """A .ttf/.otf/.ttc font with Chinese glyphs for campaign posters; None: found on
    the system, else the one the weblate-fonts package ships (bot/campaigns/fonts.py)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """``text`` for people, ``json`` (one object per line) for log collectors."""

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; expected e.g. sqlite+aiosqlite:///./order-menu.db "
                "or postgresql+asyncpg://user@host/db"
            ) from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported driver '{url.drivername}'; use one of: {', '.join(SUPPORTED_DRIVERS)}"
            )
        return value

    @field_validator("catalog_path", "communities_file", "poster_font")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("wechat_encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: str | None) -> str | None:
        return check_aes_key(value) if value else None

    @field_validator("wechat_api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("working_hours", "quiet_hours")
    @classmethod
    def _span(cls, value: str) -> str:
        from bot.worktime import parse_span

        parse_span(value)  # raises ValueError naming the value
        return value

    @field_validator("session_reminder_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        import datetime as dt

        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}': expected HH:MM, e.g. 20:00") from None
        return value

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        if value.strip():
            try:
                dt.time.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"'{value}': expected HH:MM, e.g. 09:00, or empty") from None
        return value.strip()

    @property
    def digest_at(self) -> dt.time | None:
        """``DIGEST_TIME`` as a time of day; None when there is no digest."""
        return dt.time.fromisoformat(self.digest_time) if self.digest_time else None

    @field_validator("evaluation_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        try:
            weights = [float(w) for w in value.split(",")]
        except ValueError:
            weights = []
        if len(weights) != 3 or any(w < 0 for w in weights) or not sum(weights):
            raise ValueError(f"'{value}': expected three non-negative numbers, e.g. 0.1,0.5,0.4")
        return value

    @property
    def evaluation_weights_tuple(self) -> tuple[float, float, float]:
        a, b, c = (float(w) for w in self.evaluation_weights.split(","))
        return a, b, c

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @field_validator("dev_tools")
    @classmethod
    def _dev_tools(cls, value: str) -> str:
        if value not in ("auto", "on", "off"):
            raise ValueError("expected auto, on or off")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("expected text or json")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("wechat_token", "wechat_app_id", "wechat_app_secret", "public_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _one_way_to_name_communities(self) -> Settings:
        if self.communities_file is None:
            return self
        if self.catalog_path is not None:
            raise ValueError(
                "set CATALOG_PATH (one community) or COMMUNITIES_FILE (several), not both"
            )
        # Left over from a single-community set-up, they would be ignored and the first
        # community would run on a development token: every message refused.
        single = [
            name.upper()
            for name in (
                "wechat_token",
                "wechat_app_id",
                "wechat_app_secret",
                "wechat_encoding_aes_key",
                "wechat_resident_template_id",
            )
            if getattr(self, name)
        ]
        if single:
            raise ValueError(
                f"{', '.join(single)}: with COMMUNITIES_FILE each community's account is "
                "set as <ID>_WECHAT_… (e.g. JIEDONG_WECHAT_TOKEN); unset these"
            )
        return self

    @model_validator(mode="after")
    def _ambiguous_below_matched(self) -> Settings:
        if self.match_ambiguous > self.match_matched:
            raise ValueError(
                f"MATCH_AMBIGUOUS ({self.match_ambiguous}) must not exceed "
                f"MATCH_MATCHED ({self.match_matched})"
            )
        return self

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            matched=self.match_matched, ambiguous=self.match_ambiguous, lead=self.match_lead
        )

    @property
    def safe_mode(self) -> bool:
        return self.wechat_encoding_aes_key is not None

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    def database_display(self) -> str:
        """The database URL without its password, for logs and the console."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one readable :class:`ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            if not error["loc"]:  # a rule between several variables names them itself
                lines.append(message)
                continue
            name = str(error["loc"][0]).upper()
            value = error.get("input")
            shown = f"={value!r}" if isinstance(value, str | int | float) else ""
            if name in ("WECHAT_APP_SECRET", "WECHAT_ENCODING_AES_KEY", "WECHAT_TOKEN"):
                shown = ""  # never echo secrets
            elif name == "DATABASE_URL" and isinstance(value, str):
                shown = "=" + repr(re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value))
            lines.append(f"{name}{shown}: {message}")
        raise ConfigError("; ".join(lines)) from None
