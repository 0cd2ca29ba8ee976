"""``order-menu serve``: start the service, in one process or under a supervisor
with ``--workers N``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from bot.cli.common import fail, run, settings_or_exit
from bot.config import ConfigError, Settings
from catalog.loader import CatalogError


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT or 8080).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the port (SO_REUSEPORT), kept running by a "
    "supervisor; use PostgreSQL for more than one.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(0, 3600),
    default=15.0,
    show_default=True,
    help="With --workers: seconds a stopping worker may take to finish what it is "
    "doing before it is killed.",
)
def serve(host: str | None, port: int | None, workers: int, stop_timeout: float) -> None:
    """Start the service: migrate the database, load the catalog, answer WeChat and the web.

    With no configuration at all it runs on SQLite (./order-menu.db) with the demo
    catalog of 解东社区 and a generated development token, and prints every page a
    newcomer can open.

    With --workers N, a supervisor process prepares once (migrations, catalog,
    dictionary) and forks N workers sharing the port; the kernel spreads connections
    over them. A worker that dies is replaced (with growing pauses if it keeps
    dying). They share everything through the database (conversation state, dedupe,
    token, outbox, reminders, broadcasts) and elect one leader for the scheduled jobs.
    """
    settings = settings_or_exit()
    host = host or settings.host
    port = settings.port if port is None else port
    if workers == 1:
        _configure_logging(settings)
        with _startup_errors():
            _serve(settings, host, port)
        return
    if settings.is_sqlite:
        # A resident's messages are serialised by a lock that on SQLite lives in one
        # process: two workers could each handle one of them at the same time.
        fail(
            f"--workers {workers}: several workers need PostgreSQL (DATABASE_URL); "
            "SQLite is served by one process",
            2,
        )
    if port == 0:
        fail("--workers: needs a fixed --port (the workers share it)", 2)
    from bot.supervisor import shared_metrics

    with shared_metrics():  # before anything imports prometheus_client
        _configure_logging(settings)
        _supervise(settings, host, port, workers, stop_timeout)


def _configure_logging(settings: Settings) -> None:
    from bot.logs import configure

    configure(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs SQL parameters at DEBUG, stored access tokens included.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


@contextmanager
def _startup_errors() -> Iterator[None]:
    """What stops the service from starting, as one ``error:`` line (a catalog's
    problems listed above it)."""
    from bot.serve import CannotListen

    try:
        yield
    except CannotListen as exc:
        fail(str(exc))
    except CatalogError as exc:
        click.echo(exc.report(), err=True)
        fail(f"{exc.source}: {len(exc.problems)} problem(s) in the catalog; not started")
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", 2)


def _serve(settings: Settings, host: str, port: int, **options: Any) -> None:
    from bot.serve import serve as run_server

    run(run_server(settings, host, port, **options), settings)


def _supervise(settings: Settings, host: str, port: int, workers: int, stop_timeout: float) -> None:
    """Prepare once, then fork ``workers`` workers and keep them serving (bot/supervisor.py)."""
    import gc

    import bot.serve  # noqa: F401  (imported once here, inherited by every worker)
    from bot import metrics
    from bot.startup import preload
    from bot.supervisor import Assignment, CannotStart, Supervisor

    with _startup_errors():
        run(preload(settings), settings)
    # Fork shares memory copy-on-write; the collector's passes over everything
    # preloaded would write to every page of it in each worker (see gc.freeze).
    gc.collect()
    gc.freeze()

    def work(worker: Assignment) -> None:
        announce = worker.slot == 0 and not worker.replacement  # one banner, not N
        with _startup_errors():
            _serve(settings, host, port, reuse_port=True, announce=announce, on_ready=worker.ready)

    supervisor = Supervisor(
        workers,
        work,
        stop_timeout=stop_timeout,
        on_exit=metrics.process_ended,
        on_restart=metrics.WORKER_RESTARTS.inc,
    )
    try:
        supervisor.run()
    except CannotStart as exc:
        fail(str(exc))
