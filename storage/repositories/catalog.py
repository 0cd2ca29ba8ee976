"""Import a catalog into the database, and read the live catalog back.

Importing is idempotent and never loses history: a unit, item, grid or slot that
disappears from the file is *retired* (``retired_at`` set), not deleted, so orders
keep pointing at what was ordered; if it comes back it is restored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import schema
from catalog.model import Catalog
from storage import models
from storage.engine import dialect_name
from storage.types import utcnow


@dataclass
class ChangeCount:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired or self.restored)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "updated": self.updated,
            "retired": self.retired,
            "restored": self.restored,
        }


@dataclass
class ImportSummary:
    community: str
    version: str
    units: ChangeCount = field(default_factory=ChangeCount)
    items: ChangeCount = field(default_factory=ChangeCount)
    grids: ChangeCount = field(default_factory=ChangeCount)
    slots: ChangeCount = field(default_factory=ChangeCount)
    """Shown as "sessions", the catalog format's name for them."""
    new_version: bool = False

    @property
    def changed(self) -> bool:
        return self.new_version or any(
            c.changed for c in (self.units, self.items, self.grids, self.slots)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community,
            "version": self.version,
            "new_version": self.new_version,
            "units": self.units.as_dict(),
            "items": self.items.as_dict(),
            "grids": self.grids.as_dict(),
            "sessions": self.slots.as_dict(),
        }

    def describe(self) -> str:
        """One line per kind of record that changed, for the CLI."""
        if not self.changed:
            return f"catalog {self.version} of {self.community} is already current: nothing changed"
        lines = [f"catalog {self.version} of {self.community} imported"]
        for name, counts in (
            ("units", self.units),
            ("items", self.items),
            ("grids", self.grids),
            ("sessions", self.slots),
        ):
            parts = [
                f"{len(ids)} {what}" + (f" ({', '.join(ids)})" if what != "added" else "")
                for what, ids in counts.as_dict().items()
                if ids
            ]
            if parts:
                lines.append(f"  {name}: " + ", ".join(parts))
        return "\n".join(lines)


async def import_catalog(
    session: AsyncSession,
    catalog: Catalog,
    *,
    source: str,
    source_sha256: str | None = None,
) -> ImportSummary:
    """Make the database match ``catalog``; the caller commits.

    On PostgreSQL a transaction-scoped advisory lock per community serialises
    concurrent imports (two processes starting at once); SQLite's write lock does
    the same there.
    """
    doc = catalog.document
    community_id = doc.community.id
    if dialect_name(session) == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"catalog:{community_id}"}
        )
    summary = ImportSummary(community=community_id, version=catalog.version)
    now = utcnow()

    community = await session.get(models.Community, community_id)
    if community is None:
        community = models.Community(id=community_id)
        session.add(community)
    community.name = doc.community.name
    community.timezone = doc.community.timezone
    await session.flush()

    await _sync_grids(session, community_id, doc.community.grids, summary.grids, now)
    units = await _sync_units(session, community_id, doc.units, summary.units, now)
    await _sync_items(
        session, community_id, doc, units, ZoneInfo(doc.community.timezone), summary, now
    )

    latest = await _latest_version_row(session, community_id)
    if latest is None or latest.version != catalog.version:
        summary.new_version = True
        session.add(
            models.CatalogVersion(
                community_id=community_id,
                version=catalog.version,
                document=catalog.to_json(),
                source=source,
                source_sha256=source_sha256,
                summary=summary.as_dict(),
            )
        )
    elif source_sha256 and latest.source_sha256 != source_sha256:
        latest.source_sha256 = source_sha256  # same content, reformatted file
    await session.flush()
    return summary


async def _sync_grids(
    session: AsyncSession,
    community_id: str,
    grids: list[schema.Grid],
    counts: ChangeCount,
    now: dt.datetime,
) -> None:
    existing = await _by_key(session, models.Grid, models.Grid.community_id == community_id)
    for grid in grids:
        values = {"name": grid.name, "areas": list(grid.areas)}
        _upsert(
            session,
            existing,
            grid.id,
            grid.id,
            counts,
            values,
            models.Grid,
            community_id=community_id,
        )
    for key, row in existing.items():
        _retire(row, key, counts, now)


async def _sync_units(
    session: AsyncSession,
    community_id: str,
    units: list[schema.Unit],
    counts: ChangeCount,
    now: dt.datetime,
) -> dict[str, models.Unit]:
    existing = await _by_key(session, models.Unit, models.Unit.community_id == community_id)
    by_key: dict[str, models.Unit] = {}
    for unit in units:
        values = {
            "name": unit.name,
            "kind": unit.kind,
            "contact_name": unit.contact.name if unit.contact else None,
            "contact_phone": unit.contact.phone if unit.contact else None,
            "channels": [c.model_dump(mode="json") for c in unit.channels],
            "accept_within_hours": unit.accept_within_hours,
            "commitment": unit.commitment,
        }
        by_key[unit.id] = _upsert(
            session,
            existing,
            unit.id,
            unit.id,
            counts,
            values,
            models.Unit,
            community_id=community_id,
        )
    for key, row in existing.items():
        _retire(row, key, counts, now)
    await session.flush()
    return by_key


async def _sync_items(
    session: AsyncSession,
    community_id: str,
    doc: schema.CatalogDocument,
    units: dict[str, models.Unit],
    zone: ZoneInfo,
    summary: ImportSummary,
    now: dt.datetime,
) -> None:
    counts = summary.items
    existing = await _by_key(session, models.Item, models.Item.community_id == community_id)
    synced: list[tuple[schema.Item, models.Item]] = []
    for item in doc.items:
        values = {
            "unit_id": units[item.unit].id,
            "title": item.title,
            "mode": item.mode.value,
            "category": item.category,
            "description": item.description,
            "confidential": item.confidential,
            "spec": item.model_dump(mode="json"),
        }
        row = _upsert(
            session,
            existing,
            item.id,
            item.id,
            counts,
            values,
            models.Item,
            community_id=community_id,
        )
        synced.append((item, row))
    for key, row in existing.items():
        _retire(row, key, counts, now)
    await session.flush()

    for item, row in synced:
        await _sync_co_units(session, row, [units[u].id for u in item.co_units])
        await _sync_slots(session, item, row, zone, summary.slots, now)


async def _sync_co_units(session: AsyncSession, item: models.Item, unit_ids: list[int]) -> None:
    current = set(
        await session.scalars(
            select(models.ItemCoUnit.unit_id).where(models.ItemCoUnit.item_id == item.id)
        )
    )
    wanted = set(unit_ids)
    if current == wanted:
        return
    await session.execute(
        delete(models.ItemCoUnit).where(
            models.ItemCoUnit.item_id == item.id, models.ItemCoUnit.unit_id.in_(current - wanted)
        )
    )
    session.add_all(models.ItemCoUnit(item_id=item.id, unit_id=u) for u in wanted - current)


async def _sync_slots(
    session: AsyncSession,
    item: schema.Item,
    row: models.Item,
    zone: ZoneInfo,
    counts: ChangeCount,
    now: dt.datetime,
) -> None:
    existing = await _by_key(session, models.ItemSlot, models.ItemSlot.item_id == row.id)
    for spec in item.slots:
        label = f"{item.id}/{spec.id}"
        values = {
            "starts_at": to_utc(spec.start, zone),
            "ends_at": to_utc(spec.end, zone) if spec.end else None,
            "capacity": spec.capacity,
            "location": spec.location,
        }
        _upsert(session, existing, spec.id, label, counts, values, models.ItemSlot, item_id=row.id)
    for key, found in existing.items():
        _retire(found, f"{item.id}/{key}", counts, now)


KeyedRow = TypeVar("KeyedRow", models.Grid, models.Unit, models.Item, models.ItemSlot)


async def _by_key(
    session: AsyncSession, model: type[KeyedRow], condition: ColumnElement[bool]
) -> dict[str, KeyedRow]:
    """The existing rows of one kind, by their catalog id."""
    rows = await session.scalars(select(model).where(condition))
    return {row.key: row for row in rows}


def to_utc(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Catalog times are wall-clock times in the community's zone unless they say otherwise."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def _upsert(
    session: AsyncSession,
    existing: dict[str, KeyedRow],
    key: str,
    label: str,
    counts: ChangeCount,
    values: dict[str, Any],
    model: type[KeyedRow],
    **owner: Any,
) -> KeyedRow:
    """Create the row for ``key`` or bring the existing one up to date (and back from
    retirement); take it out of ``existing``, so that what remains there is retired."""
    row = existing.pop(key, None)
    if row is None:
        row = model(key=key, **owner, **values)
        session.add(row)
        counts.added.append(label)
    else:
        _update(row, values, label, counts)
        _restore(row, label, counts)
    return row


def _update(row: Any, values: dict[str, Any], label: str, counts: ChangeCount) -> None:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        counts.updated.append(label)


def _restore(row: Any, label: str, counts: ChangeCount) -> None:
    if row.retired_at is not None:
        row.retired_at = None
        counts.restored.append(label)


def _retire(row: Any, label: str, counts: ChangeCount, now: dt.datetime) -> None:
    if row.retired_at is None:
        row.retired_at = now
        counts.retired.append(label)


async def _latest_version_row(
    session: AsyncSession, community_id: str
) -> models.CatalogVersion | None:
    return await session.scalar(
        select(models.CatalogVersion)
        .where(models.CatalogVersion.community_id == community_id)
        .order_by(models.CatalogVersion.id.desc())
        .limit(1)
    )


async def community_ids(session: AsyncSession) -> list[str]:
    """Every community with a catalog in this database, in the order they were added."""
    rows = await session.execute(
        select(models.CatalogVersion.community_id, func.min(models.CatalogVersion.id))
        .group_by(models.CatalogVersion.community_id)
        .order_by(func.min(models.CatalogVersion.id))
    )
    return [community_id for community_id, _ in rows]


async def newest_versions(session: AsyncSession) -> dict[str, str]:
    """The live catalog version of every community: one cheap query, polled by each
    process to notice a catalog another process imported."""
    newest = (
        select(func.max(models.CatalogVersion.id))
        .group_by(models.CatalogVersion.community_id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(models.CatalogVersion.community_id, models.CatalogVersion.version).where(
            models.CatalogVersion.id.in_(newest)
        )
    )
    return {community_id: version for community_id, version in rows}


async def live_catalog(session: AsyncSession, community_id: str | None = None) -> Catalog | None:
    """The newest catalog of a community (of the only/first community when None)."""
    query = select(models.CatalogVersion).order_by(models.CatalogVersion.id.desc()).limit(1)
    if community_id is not None:
        query = query.where(models.CatalogVersion.community_id == community_id)
    row = await session.scalar(query)
    if row is None:
        return None
    return Catalog.from_json(row.document, source=row.source)


async def last_source_sha256(session: AsyncSession, community_id: str) -> str | None:
    """Hash of the file imported last; versions made elsewhere (the console) have none.

    ``serve`` re-imports its catalog file only when this differs, so edits made in the
    console survive a restart until someone changes the file itself.
    """
    return await session.scalar(
        select(models.CatalogVersion.source_sha256)
        .where(
            models.CatalogVersion.community_id == community_id,
            models.CatalogVersion.source_sha256.is_not(None),
        )
        .order_by(models.CatalogVersion.id.desc())
        .limit(1)
    )
