"""``order-menu chat``: talk to a running server as a resident, through its real webhook."""

from __future__ import annotations

import click

from bot.cli.common import account_spec, database, fail, run, settings_or_exit


@click.command()
@click.option(
    "--as",
    "openid",
    default="o_chat_newcomer",
    show_default=True,
    help="The resident's openid to talk as.",
)
@click.option(
    "--url", default=None, help="The running server (default: http://HOST:PORT from the settings)."
)
def chat(openid: str, url: str | None) -> None:
    """Talk to a running server as a resident would, through its real /wechat webhook.

    Each line is sent as a signed WeChat message; replies are printed, including
    those delivered later through the customer-service API. Type /help for voice,
    images, places, menu clicks and following.

    Exits 1 if nothing answers at the server's address (with input piped in, also
    when the server goes away during the chat).
    """
    from bot.chat import ServerUnreachable, run_chat
    from bot.startup import dev_token_key
    from storage.repositories.instance import get_value

    settings = settings_or_exit()
    spec = account_spec(settings)
    token = spec.wechat_token
    if token is None:  # the development token serve generated and stored
        key = dev_token_key(spec, spec.id or "")

        async def stored() -> str | None:
            async with database(settings) as (_, sessionmaker), sessionmaker() as session:
                return await get_value(session, key)

        token = run(stored(), settings)
        if token is None:
            fail("no WECHAT_TOKEN set and no development token yet: start `order-menu serve` first")
    assert token is not None
    base = url or f"http://{settings.host}:{settings.port}"
    path = f"/wechat/{spec.id}" if spec.id else "/wechat"
    try:
        run_chat(base, token, openid, spec.wechat_encoding_aes_key, spec.wechat_app_id, path)
    except ServerUnreachable as exc:
        fail(str(exc))
