"""Households of a community's grids: storing an imported list, listing them, and
finding the household an address names (a grid worker's 3栋2单元501, a resident's
``building``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.addresses import Address, parse_address
from catalog.household_lists import HouseholdRow
from storage import models


@dataclass(frozen=True)
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    """Households of the list's grids missing from it (only with ``retire_missing``)."""


async def import_rows(
    session: AsyncSession,
    community_id: str,
    rows: Iterable[HouseholdRow],
    *,
    now: dt.datetime,
    retire_missing: bool = False,
) -> ImportCounts:
    """Store a checked list: a household already there (same address) is updated, a
    retired one listed again comes back; none is added twice."""
    existing = {
        h.address_key: h
        for h in await session.scalars(
            select(models.Household).where(models.Household.community_id == community_id)
        )
    }
    updated = unchanged = retired = 0
    new: list[dict[str, object]] = []
    listed: set[str] = set()
    grids: set[str] = set()
    for row in rows:
        key = row.address.key
        listed.add(key)
        grids.add(row.grid_key)
        values = {
            "grid_key": row.grid_key,
            "building": row.building,
            "unit": row.address.unit,
            "room": row.address.room,
            "notes": row.notes,
            "elderly_alone": row.elderly_alone,
            "retired_at": None,
        }
        household = existing.get(key)
        if household is None:
            new.append(
                {
                    "community_id": community_id,
                    "address_key": key,
                    "bare_key": row.address.bare_key,
                    **values,
                }
            )
        elif any(getattr(household, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(household, name, value)
            updated += 1
        else:
            unchanged += 1
    if retire_missing:
        for key, household in existing.items():
            if key not in listed and household.grid_key in grids and household.retired_at is None:
                household.retired_at = now
                retired += 1
    await session.flush()
    if new:
        # One executemany, not 20,000 ORM objects: the unit of work's bookkeeping
        # held the event loop for 2 s on a whole community's list.
        await session.execute(insert(models.Household), new)
    return ImportCounts(len(new), updated, unchanged, retired)


@dataclass(frozen=True)
class HouseholdInfo:
    id: int
    grid_key: str
    label: str
    """3栋2单元501, as people say it."""
    notes: str
    elderly_alone: bool
    address_key: str
    """Normalised (``catalog.addresses.Address.key``): which building it is in."""


def label(household: models.Household) -> str:
    unit = f"{household.unit}单元" if household.unit else ""
    return f"{household.building}{unit}{household.room}"


def info(household: models.Household) -> HouseholdInfo:
    return HouseholdInfo(
        household.id,
        household.grid_key,
        label(household),
        household.notes,
        household.elderly_alone,
        household.address_key,
    )


def _order(household: models.Household) -> tuple[object, ...]:
    """Elderly living alone first, then as the doors follow: 2栋 before 10栋."""

    def number(text: str) -> tuple[int, str]:
        return (int(text), "") if text.isdigit() else (1 << 30, text)

    building, unit, room = household.bare_key.split("-")
    return (
        not household.elderly_alone,
        household.building.rstrip("0123456789栋"),
        number(building),
        number(unit),
        number(room),
    )


async def households(
    session: AsyncSession, community_id: str, grid_keys: Collection[str] | None = None
) -> list[HouseholdInfo]:
    """The community's households (of ``grid_keys`` only, when given) not retired,
    elderly living alone first, then in the order of their doors."""
    query = select(models.Household).where(
        models.Household.community_id == community_id, models.Household.retired_at.is_(None)
    )
    if grid_keys is not None:
        query = query.where(models.Household.grid_key.in_(list(grid_keys)))
    rows = sorted(await session.scalars(query), key=_order)
    return [info(h) for h in rows]


@dataclass(frozen=True)
class GridCount:
    households: int
    elderly_alone: int


async def grid_counts(session: AsyncSession, community_id: str) -> dict[str, GridCount]:
    """Households (not retired) of each grid, and how many are elderly living alone:
    counted by the database (loading 100,000 households to count them took 3 s)."""
    rows = await session.execute(
        select(
            models.Household.grid_key,
            func.count(),
            func.count(case((models.Household.elderly_alone.is_(True), 1))),
        )
        .where(models.Household.community_id == community_id, models.Household.retired_at.is_(None))
        .group_by(models.Household.grid_key)
    )
    return {grid: GridCount(int(total), int(elderly)) for grid, total, elderly in rows}


class AddressIndex:
    """Address keys → household ids, to find many residents' households at once: an
    address naming no estate also matches a household whose key names one, when only
    one household has that address. Plain dictionaries: built once, it may be read
    from a worker thread (:func:`households_for`)."""

    def __init__(self, rows: Iterable[tuple[int, str]]) -> None:
        """``rows``: (household id, ``address_key``)."""
        self.by_key: dict[str, int] = {}
        self.by_bare: dict[str, list[int]] = {}
        for household_id, key in rows:
            self.by_key[key] = household_id
            self.by_bare.setdefault(_bare(key), []).append(household_id)

    def find(self, address: Address) -> int | None:
        found = self.by_key.get(address.key)
        if found is not None:
            return found
        candidates = self.by_bare.get(address.bare_key, [])
        return candidates[0] if len(candidates) == 1 else None


def _bare(key: str) -> str:
    """解东:3-2-501 → 3-2-501 (``Address.bare_key`` of a stored key)."""
    return key.rsplit(":", 1)[-1]


async def address_index(session: AsyncSession, community_id: str) -> AddressIndex:
    """The index of the community's households not retired."""
    rows = await session.execute(
        select(models.Household.id, models.Household.address_key).where(
            models.Household.community_id == community_id, models.Household.retired_at.is_(None)
        )
    )
    return AddressIndex((household_id, key) for household_id, key in rows)


def households_for(index: AddressIndex, rows: Iterable[tuple[int, str | None]]) -> dict[int, int]:
    """Resident id → household id, for the ``rows`` (resident id, ``building`` as the
    resident wrote it) that name a listed household's room. Pure CPU (an address is
    parsed per row): for many residents, run it in a thread."""
    found: dict[int, int] = {}
    for resident_id, building in rows:
        address = parse_address(building or "")
        household_id = index.find(address) if address is not None else None
        if household_id is not None:
            found[resident_id] = household_id
    return found


async def household_for_address(
    session: AsyncSession, community_id: str, text: str
) -> models.Household | None:
    """The household (not retired) that ``text`` names, written as people write it
    (3栋2单元501, 三栋二单元五零一, 3-2-501, 解东小区3栋2单元501); None when it names
    no address or no listed household. As :class:`AddressIndex` finds it, by index
    probes: the full key, else the one household with that address in any estate."""
    address = parse_address(text)
    if address is None:
        return None
    listed = select(models.Household).where(
        models.Household.community_id == community_id, models.Household.retired_at.is_(None)
    )
    found = await session.scalar(listed.where(models.Household.address_key == address.key))
    if found is not None:
        return found
    candidates = list(
        await session.scalars(listed.where(models.Household.bare_key == address.bare_key).limit(2))
    )
    return candidates[0] if len(candidates) == 1 else None


IDS_PER_QUERY = 5000
"""Resident ids in one IN list: PostgreSQL (asyncpg) takes at most 32,767 parameters
in a statement, and a campaign may reach 100,000 followers."""


async def households_of_residents(
    session: AsyncSession, community_id: str, resident_ids: Collection[int] | None = None
) -> dict[int, int]:
    """Resident id → household id, for residents whose ``building`` names a listed
    household's room (3栋2单元501); residents whose text names no room are left out.
    All the community's residents when ``resident_ids`` is None. The addresses are
    read in a worker thread."""
    query = select(models.Resident.id, models.Resident.building).where(
        models.Resident.community_id == community_id, models.Resident.building.is_not(None)
    )
    residents: list[tuple[int, str | None]] = []
    if resident_ids is None:
        residents += [(i, b) for i, b in await session.execute(query)]
    else:
        ids = sorted(set(resident_ids))
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            rows = await session.execute(query.where(models.Resident.id.in_(chunk)))
            residents += [(i, b) for i, b in rows]
    if not residents:
        return {}
    index = await address_index(session, community_id)
    return await asyncio.to_thread(households_for, index, residents)


async def by_ids(
    session: AsyncSession, community_id: str, ids: Collection[int]
) -> dict[int, models.Household]:
    """The community's households of these ids."""
    rows = await session.scalars(
        select(models.Household).where(
            models.Household.community_id == community_id, models.Household.id.in_(list(ids))
        )
    )
    return {h.id: h for h in rows}
