"""Which communities this deployment serves, and each one's WeChat credentials.

The zero-config default is one community: the catalog at ``CATALOG_PATH`` (or the
demo catalog) and the account in ``WECHAT_TOKEN``, ``WECHAT_APP_ID`` …

A street office serving several communities lists them in ``COMMUNITIES_FILE``, a
TOML file that holds no secret and may be kept in version control::

    [[community]]
    id = "jiedong"                   # must be the id in the catalog's community.id
    catalog = "catalogs/jiedong.yaml"  # relative to this file

    [[community]]
    id = "heping"
    catalog = "catalogs/heping.yaml"
    env_prefix = "HP_"               # optional; default: the id in upper case + "_"

Each community's account comes from the environment (or ``.env``) under its prefix:
``JIEDONG_WECHAT_TOKEN``, ``JIEDONG_WECHAT_APP_ID``, ``JIEDONG_WECHAT_APP_SECRET``,
``JIEDONG_WECHAT_ENCODING_AES_KEY``, ``JIEDONG_WECHAT_RESIDENT_TEMPLATE_ID``. The
first community listed is the default one: it also answers on ``/wechat`` and the
public pages without a community in their path.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from bot.config import ConfigError, Settings, check_aes_key

COMMUNITY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""Ids appear in URLs (``/wechat/<id>``): lower-case letters, digits, '-' and '_'."""


@dataclass(frozen=True)
class CommunitySpec:
    """One community as configured: where its catalog is and its account's credentials."""

    id: str | None
    """None for the zero-config community: its id is the one in its catalog."""
    catalog_path: Path | None
    """None: the demo catalog shipped in the package."""
    wechat_token: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_encoding_aes_key: str | None = None
    wechat_resident_template_id: str | None = None

    @property
    def safe_mode(self) -> bool:
        return self.wechat_encoding_aes_key is not None

    @property
    def has_api(self) -> bool:
        return bool(self.wechat_app_id and self.wechat_app_secret)


def community_specs(
    settings: Settings, environ: Mapping[str, str | None] | None = None
) -> list[CommunitySpec]:
    """The communities to serve, the default one first; ConfigError names what is wrong."""
    if settings.communities_file is None:
        return [
            CommunitySpec(
                id=None,
                catalog_path=settings.catalog_path,
                wechat_token=settings.wechat_token,
                wechat_app_id=settings.wechat_app_id,
                wechat_app_secret=settings.wechat_app_secret,
                wechat_encoding_aes_key=settings.wechat_encoding_aes_key,
                wechat_resident_template_id=settings.wechat_resident_template_id,
            )
        ]
    if environ is None:
        environ = {**dotenv_values(".env"), **os.environ}
    return read_communities_file(settings.communities_file, environ)


def read_communities_file(path: Path, environ: Mapping[str, str | None]) -> list[CommunitySpec]:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"COMMUNITIES_FILE={where!r}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"COMMUNITIES_FILE={where!r}: not valid TOML ({exc})") from None
    entries = data.get("community")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: expected one [[community]] table or more")
    problems: list[str] = []
    specs: list[CommunitySpec] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        at = f"{where}: community[{n}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected a table")
            continue
        unknown = set(entry) - {"id", "catalog", "env_prefix"}
        if unknown:
            problems.append(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        community_id = entry.get("id")
        if not isinstance(community_id, str) or not COMMUNITY_ID.match(community_id):
            problems.append(
                f"{at}.id={community_id!r}: expected lower-case letters, digits, '-' or '_'"
            )
            continue
        if community_id in seen:
            problems.append(f"{at}.id={community_id!r}: listed twice")
        seen.add(community_id)
        catalog = entry.get("catalog")
        catalog_path = (path.parent / catalog) if isinstance(catalog, str) else None
        if catalog_path is None or not catalog_path.is_file():
            problems.append(f"{at}.catalog={catalog!r}: no such file")
            continue
        prefix = entry.get("env_prefix", re.sub(r"[^A-Z0-9]", "_", community_id.upper()) + "_")
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", prefix):
            problems.append(f"{at}.env_prefix={prefix!r}: expected upper-case letters and '_'")
            continue
        values = {
            field: (environ.get(prefix + field.upper()) or None)
            for field in (
                "wechat_token",
                "wechat_app_id",
                "wechat_app_secret",
                "wechat_encoding_aes_key",
                "wechat_resident_template_id",
            )
        }
        problems += _credential_problems(prefix, values)
        specs.append(CommunitySpec(id=community_id, catalog_path=catalog_path, **values))
    if problems:
        raise ConfigError("; ".join(problems))
    return specs


def _credential_problems(prefix: str, values: Mapping[str, str | None]) -> list[str]:
    """The same checks as the single-community settings, named by variable (never
    echoing a secret)."""
    problems = []
    if bool(values["wechat_app_id"]) != bool(values["wechat_app_secret"]):
        problems.append(f"{prefix}WECHAT_APP_ID and {prefix}WECHAT_APP_SECRET: set both or neither")
    aes = values["wechat_encoding_aes_key"]
    if aes is not None:
        try:
            check_aes_key(aes)
        except ValueError as exc:
            problems.append(f"{prefix}WECHAT_ENCODING_AES_KEY: {exc}")
    return problems
