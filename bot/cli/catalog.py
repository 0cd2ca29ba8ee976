"""``order-menu catalog``: check, import and export service catalogs (docs/catalog.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bot.cli.common import catalog_or_exit, community_catalog, database, run, settings_or_exit
from catalog.model import Catalog


@click.group()
def catalog() -> None:
    """Check and import service catalogs (YAML, see docs/catalog.md)."""


@catalog.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def catalog_validate(file: Path) -> None:
    """Check FILE and list every problem as `path: message`; exit 1 if there is any."""
    loaded = catalog_or_exit(file)
    click.echo(
        f"{file}: OK — {loaded.community_name}, {len(loaded.units)} units, "
        f"{len(loaded.items)} items, {len(loaded.categories)} categories (version {loaded.version})"
    )


@catalog.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def catalog_import(file: Path, as_json: bool) -> None:
    """Make the database match FILE.

    Idempotent: importing the same file again changes nothing. Units, items, grids and
    sessions missing from FILE are retired (kept for the orders that point at them),
    and restored if they come back. A running server picks the change up on restart.
    """
    from bot.startup import file_sha256
    from storage.repositories.catalog import import_catalog

    settings = settings_or_exit()
    loaded = catalog_or_exit(file)

    async def go() -> Any:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            return await import_catalog(
                session, loaded, source=str(file), source_sha256=file_sha256(file)
            )

    summary = run(go(), settings)
    click.echo(json.dumps(summary.as_dict(), ensure_ascii=False) if as_json else summary.describe())


@catalog.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the catalog YAML here (default: standard output).",
)
@click.option(
    "--regression",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the learning inbox's decisions as labelled messages (JSON lines).",
)
def catalog_export(output: Path | None, regression: Path | None) -> None:
    """Write the live catalog with what staff taught in the learning inbox folded in.

    Phrases staff made synonyms of an item, questions of a FAQ entry or ignored are
    written into the item's `synonyms`, the entry's `questions` and the top-level
    `ignore` list, so they can be committed to the catalog's YAML file. The file is
    regenerated from the stored catalog: comments and the original key order are not
    kept. Decisions whose item or FAQ entry is no longer in the catalog are listed on
    stderr and left out.
    """
    import yaml

    from catalog.learned import Learning, is_stale, regression_line, with_learned
    from storage.repositories.inbox import decisions_in_effect

    settings = settings_or_exit()

    async def go() -> tuple[Catalog, list[Any]]:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            base = await community_catalog(session)
            return base, await decisions_in_effect(session, base.community_id)

    base, rows = run(go(), settings)
    learned = tuple(row.learned for row in rows)
    stale = [one for one in learned if is_stale(base.document, one)]
    for one in stale:
        click.echo(
            f"warning: '{one.phrase}' was made a {one.action} of '{one.target}', "
            "which is not in the catalog any more: left out",
            err=True,
        )
    exported = with_learned(base, Learning(1, learned))
    data = exported.document.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    if regression is not None:
        lines = [
            json.dumps(regression_line(one), ensure_ascii=False) + "\n"
            for one in learned
            if one not in stale
        ]
        regression.write_text("".join(lines), encoding="utf-8")
        click.echo(f"{len(lines)} labelled message(s) written to {regression}", err=True)
