"""``order-menu broadcast``: safety-campaign notices to subscribed residents, and
their progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.common import (
    chosen_community,
    community_catalog,
    database,
    fail,
    run,
    settings_or_exit,
)


@click.group()
def broadcast() -> None:
    """Safety-campaign notices to subscribed residents (反诈, 防溺水 …)."""


@broadcast.command("create")
@click.option("--topic", required=True, help="Topic id or name (防溺水, anti-fraud …).")
@click.option("--title", required=True, help="A short title (at most 40 characters).")
@click.option("--text", "body", required=True, help="The notice (at most 600 characters).")
@click.option("--grid", default=None, help="Only residents of this grid (网格) id.")
@click.option("--tag", default=None, help="Only residents with this tag (e.g. 有未成年子女).")
@click.option(
    "--at",
    "at_text",
    default=None,
    help="Send once at this local time (YYYY-MM-DD HH:MM); default now.",
)
@click.option(
    "--every", default=None, help='Recurring, in words: "每周五上午10点", "每月1号上午9点".'
)
@click.option("--cron", default=None, help='Recurring, crontab in local time: "0 10 * * FRI".')
@click.option("--from", "from_text", default=None, help="First day of a recurring broadcast.")
@click.option("--until", "until_text", default=None, help="Last day of a recurring broadcast.")
@click.option("--yes", is_flag=True, help="Schedule it; without it only the preview is shown.")
def broadcast_create(
    topic: str,
    title: str,
    body: str,
    grid: str | None,
    tag: str | None,
    at_text: str | None,
    every: str | None,
    cron: str | None,
    from_text: str | None,
    until_text: str | None,
    yes: bool,
) -> None:
    """Preview a broadcast, and schedule it with --yes."""
    import datetime as dt

    from bot.jobs.broadcasts import BroadcastProblem, Draft, prepare

    settings = settings_or_exit()

    async def go() -> tuple[Draft, int | None]:
        async with database(settings) as (_, sessionmaker), sessionmaker.begin() as session:
            catalog = await community_catalog(session)
            draft = await prepare(
                session,
                catalog,
                topic=topic,
                title=title,
                text=body,
                grid=grid,
                tag=tag,
                at=at_text,
                cron=cron,
                every=every,
                active_from=from_text,
                active_until=until_text,
                now=dt.datetime.now(dt.UTC),
                per_month=settings.mass_send_quota,
                batch_size=settings.mass_send_batch,
            )
            broadcast_id = None
            if yes:
                session.add(draft.row)
                await session.flush()
                broadcast_id = draft.row.id
            return draft, broadcast_id

    try:
        draft, broadcast_id = run(go(), settings)
    except BroadcastProblem as exc:
        fail("; ".join(f"--{p.strip()}" for p in str(exc).split(";")), 2)
        return
    except click.ClickException as exc:
        fail(exc.message)
        return
    click.echo(f"【{title}】")
    click.echo(body)
    click.echo("")
    plan = draft.plan
    assert plan is not None
    click.echo(f"to: {plan.total} subscribed followers now; {len(body)} characters")
    click.echo(f"  mass send: {plan.mass} in {plan.batches} call(s)")
    click.echo(
        f"  customer-service message (monthly mass quota spent, wrote within 48 h): {plan.service}"
    )
    click.echo(
        f"  not reachable by the account (quota spent, no message in 48 h): {plan.unreachable}"
    )
    if draft.row.cron:
        click.echo(f"every: {draft.every or 'custom'} (cron {draft.row.cron})")
    click.echo("sends: " + ", ".join(draft.dates) + (" …" if len(draft.dates) == 5 else ""))
    if broadcast_id is None:
        click.echo("preview only: add --yes to schedule it")
    else:
        click.echo(
            f"scheduled: broadcast {broadcast_id} (order-menu broadcast status {broadcast_id})"
        )


@broadcast.command("status")
@click.argument("broadcast_id", type=int)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every delivery to this CSV file.",
)
def broadcast_status(broadcast_id: int, csv_path: Path | None) -> None:
    """Progress of a broadcast: a bar, counts by status, failures by reason.

    ``unknown`` deliveries were sent without a clear answer from WeChat: probably
    delivered, and never sent again.
    """
    from bot.jobs.broadcasts import UNKNOWN_MEANS
    from bot.spreadsheets import write_csv
    from storage import models
    from storage.repositories.broadcasts import delivery_rows, mass_progress, progress

    settings = settings_or_exit()

    async def go() -> Any:
        async with database(settings) as (_, sessionmaker), sessionmaker() as session:
            community_id = await chosen_community(session)
            row = await session.get(models.Broadcast, broadcast_id)
            if row is None or row.community_id != community_id:
                raise click.ClickException(f"BROADCAST_ID: no broadcast {broadcast_id}")
            rows = await delivery_rows(session, broadcast_id) if csv_path else []
            mass = await mass_progress(session, broadcast_id)
            return row, await progress(session, broadcast_id), mass, rows

    try:
        row, done, mass, rows = run(go(), settings)
    except click.ClickException as exc:
        fail(exc.message)
        return
    width = 30
    filled = int(width * done.finished / done.total) if done.total else 0
    percent = 100 * done.finished / done.total if done.total else 0
    click.echo(f"broadcast {broadcast_id} 【{row.title}】 topic {row.topic}, {row.status}")
    click.echo(f"{done.runs} run(s)")
    click.echo(
        f"[{'#' * filled}{'.' * (width - filled)}] {done.finished}/{done.total} ({percent:.0f}%)"
    )
    for status in ("sent", "pending", "sending", "skipped", "failed", "unknown"):
        if done.by_status.get(status):
            meaning = f" ({UNKNOWN_MEANS})" if status == "unknown" else ""
            click.echo(f"  {status:<8} {done.by_status[status]}{meaning}")
    for reason, n in sorted(done.failures.items(), key=lambda kv: -kv[1]):
        click.echo(f"  - {reason}: {n}")
    if mass.batches:
        click.echo(
            f"mass send: {mass.planned} followers in {mass.batches} call(s), "
            f"{mass.submitted} taken by WeChat"
        )
        if mass.finished:
            click.echo(
                f"  WeChat reported ({mass.finished} job(s)): {mass.reported_sent} sent, "
                f"{mass.reported_filtered_out} filtered out (refusing, or over their four)"
            )
        for error in mass.errors:
            click.echo(f"  - {error}")
    if csv_path is not None:
        header = ["run_due_at", "openid", "status", "reason", "attempts", "updated_at"]
        with csv_path.open("w", newline="", encoding="utf-8-sig") as file:
            write_csv(  # openids and WeChat's reasons are others' text: never formulas
                file,
                header,
                ([v.isoformat() if hasattr(v, "isoformat") else v for v in r] for r in rows),
            )
        click.echo(f"wrote {len(rows)} deliveries to {csv_path}")
