"""``order-menu menu``: push the official account's custom menu (自定义菜单) to WeChat."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli.common import account_spec, catalog_or_exit, database, fail, run, settings_or_exit
from bot.config import Settings


@click.group()
def menu() -> None:
    """The official account's custom menu (自定义菜单)."""


@menu.command("push")
@click.option(
    "--file",
    "menu_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Menu in YAML, or JSON when the name ends in .json (default: the three-button menu).",
)
def menu_push(menu_file: Path | None) -> None:
    """Replace the account's custom menu with FILE's, or with the default menu.

    The default menu has three CLICK buttons: 服务点单 (key MENU_SERVICES), 我的订单
    (MY_ORDERS) and 帮助 (HELP). A file uses WeChat's own menu format:

    \b
      button:                    # 1 to 3 buttons
        - name: 服务点单         # up to 16 bytes (4 汉字)
          type: click            # click needs a key, view a url
          key: MENU_SERVICES
        - name: 更多
          sub_button:            # instead of a type: 1 to 5 sub-buttons
            - name: 社区公示     # up to 60 bytes
              type: view
              url: https://example.org/notices

    Needs WECHAT_APP_ID and WECHAT_APP_SECRET, and a migrated database (the access
    token is kept there). WeChat clients show the new menu within minutes.
    """
    from bot.wechat import default_menu

    settings = settings_or_exit()
    app_id, app_secret = _app_credentials(settings)
    body = _menu_file_or_exit(menu_file) if menu_file else default_menu()
    _push_menu(settings, app_id, app_secret, body)
    click.echo(
        f"menu pushed: {', '.join(str(b['name']) for b in body['button'])} "
        f"({settings.wechat_api_base})"
    )


def _app_credentials(settings: Settings) -> tuple[str, str]:
    """AppID and AppSecret, or exit 2 naming whichever is missing."""
    spec = account_spec(settings)
    app_id, app_secret = spec.wechat_app_id or "", spec.wechat_app_secret or ""
    prefix = f"{spec.id.upper().replace('-', '_')}_" if spec.id else ""
    missing = [
        name
        for name, value in (
            (f"{prefix}WECHAT_APP_ID", app_id),
            (f"{prefix}WECHAT_APP_SECRET", app_secret),
        )
        if not value
    ]
    if missing:
        fail(f"{' and '.join(missing)} must be set to call the WeChat API", 2)
    return app_id, app_secret


def _push_menu(settings: Settings, app_id: str, app_secret: str, body: dict[str, Any]) -> None:
    """Create the menu through the API client; WeChat's refusal becomes one error line."""
    import aiohttp

    from bot.wechat.api import WeChatAPI
    from bot.wechat.errors import InvalidCredential, WeChatError

    async def go() -> None:
        async with database(settings) as (_, sessionmaker), aiohttp.ClientSession() as http:
            api = WeChatAPI(
                app_id=app_id,
                app_secret=app_secret,
                base_url=settings.wechat_api_base,
                sessionmaker=sessionmaker,
                community_id=await _community_id(sessionmaker, settings),
                http=http,
            )
            await api.create_menu(body)

    try:
        run(go(), settings)
    except InvalidCredential as exc:
        fail(f"WeChat refused the credentials (check WECHAT_APP_ID/WECHAT_APP_SECRET): {exc}", 2)
    except WeChatError as exc:
        fail(f"the menu was not pushed: {exc}")


async def _community_id(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """The community whose token the push uses: the live catalog's, else the catalog file's."""
    from bot.startup import catalog_file
    from storage.repositories.catalog import live_catalog

    spec = account_spec(settings)
    if spec.id is not None:
        return str(spec.id)
    async with sessionmaker() as session:
        live = await live_catalog(session)
    if live is not None:
        return live.community_id
    loaded = await asyncio.to_thread(catalog_or_exit, catalog_file(settings))
    return str(loaded.community_id)


def _menu_file_or_exit(path: Path) -> dict[str, Any]:
    """The checked menu of ``path``; every problem is listed before exiting with status 1."""
    from bot.wechat.menu import MenuFileError, load_menu

    try:
        return load_menu(path)
    except MenuFileError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        fail(str(exc))
