"""``order-menu match``: what the bot understands from resident messages, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli.common import catalog_or_exit, settings_or_exit


@click.command()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    help="Catalog YAML (default: CATALOG_PATH, else the demo catalog).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input line.")
@click.option("--explain", is_flag=True, help="Also show the catalog terms found in each message.")
@click.argument("text", nargs=-1)
def match(catalog_path: Path | None, as_json: bool, explain: bool, text: tuple[str, ...]) -> None:
    """Show what the bot understands from resident messages.

    Each TEXT is one message; with no TEXT, one message per line is read from stdin.
    First what the resident is doing (the act: request, greeting, thanks, outcome,
    rating, cancel, question, complaint, emergency, chat, ack); for a request, the
    decision: `matched` (one item), `ambiguous` (2–3 choices to offer) or `none`
    (nothing in the catalog: an unmet need in a conversation); for a question, the FAQ
    entry that answers it.
    """
    import sys

    from bot.startup import catalog_file
    from catalog.matcher import Matcher
    from catalog.understanding import understand

    settings = settings_or_exit()
    path = catalog_path or catalog_file(settings)
    matcher = Matcher(catalog_or_exit(path), thresholds=settings.thresholds)
    messages = text or tuple(line.rstrip("\r\n") for line in sys.stdin)
    for message in messages:
        reading = understand(message, matcher)
        if as_json:
            found = {**reading.match.as_json(), "act": reading.act.value}
            found["faq"] = reading.faq.faq.id if reading.faq else None
            click.echo(json.dumps(found, ensure_ascii=False))
            continue
        click.echo(_describe_reading(matcher, reading, explain))


def _describe_reading(matcher: Any, reading: Any, explain: bool) -> str:
    catalog = matcher.catalog
    result = reading.match
    act = reading.act.value
    if reading.faq is not None:
        line = f"{act:<9} faq {reading.faq.faq.id} {reading.faq.score:.2f}"
    elif reading.detail.emergency is not None:
        line = f"{act:<9} {reading.detail.emergency.value}"
    elif act != "request":
        line = act
    elif result.decision == "matched":
        line = f"matched   {catalog.item(result.item).title} ({result.item}) {result.score:.2f}"
    elif result.decision == "ambiguous":
        choices = " | ".join(
            f"{catalog.item(c.item).title} {c.score:.2f}" for c in result.candidates
        )
        line = f"ambiguous {choices}"
    else:
        line = "none"
    line = f"{line}\t{reading.text}"
    if explain:
        line += f"\n          terms: {', '.join(result.terms) or '-'}"
    return line
