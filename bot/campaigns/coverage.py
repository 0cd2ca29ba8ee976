"""How far a campaign reached, per grid: the households reached by any channel.

A household counts once however many channels reached it:

- **the account**: a follower whose ``building`` names the household's room
  (``storage.repositories.households.households_of_residents``) was sent the
  campaign, by mass send or customer-service message;
- **a group post**: staff ticked a 楼栋群 the campaign was posted to, and the group
  covers the household's building;
- **a visit**: a grid worker recorded 已宣传 or 需跟进 for it in this campaign.

What is left is listed elderly living alone first: those are whom the street office
asks about. WeChat reports how many followers a mass send reached (its
``MASSSENDJOBFINISH`` counts), not who read a text message: read counts exist only
for articles (图文), which campaigns do not send, so none are shown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.addresses import Building, building_of_key, buildings_named, covers
from catalog.model import Catalog
from storage import models
from storage.repositories import broadcasts, groups, households, visits
from storage.repositories.households import HouseholdInfo

ACCOUNT, GROUP, VISIT = "account", "group", "visit"


@dataclass
class HouseholdReach:
    household: HouseholdInfo
    channels: set[str] = field(default_factory=set)
    nobody_home: bool = False
    """A visit found nobody home, and no channel reached it yet."""

    @property
    def reached(self) -> bool:
        return bool(self.channels)


@dataclass
class GridCoverage:
    grid_key: str
    grid_name: str
    households: list[HouseholdReach]

    def count(self, channel: str | None = None) -> int:
        """Households reached (by ``channel``, or by any)."""
        return sum(1 for h in self.households if (channel in h.channels if channel else h.reached))

    @property
    def total(self) -> int:
        return len(self.households)

    @property
    def percent(self) -> int:
        return round(100 * self.count() / self.total) if self.total else 0

    @property
    def left(self) -> list[HouseholdReach]:
        """Not reached, elderly living alone first (the households' own order)."""
        return [h for h in self.households if not h.reached]

    @property
    def elderly_left(self) -> int:
        return sum(1 for h in self.left if h.household.elderly_alone)


@dataclass
class Coverage:
    grids: list[GridCoverage]
    followers_sent: int
    """Followers the account sent the campaign to, whether or not their household is known."""
    followers_unlinked: int
    """Of those, followers whose household is not known (no room in their address)."""
    wechat_reported: broadcasts.MassProgress

    @property
    def total(self) -> int:
        return sum(g.total for g in self.grids)

    def count(self, channel: str | None = None) -> int:
        return sum(g.count(channel) for g in self.grids)

    @property
    def percent(self) -> int:
        return round(100 * self.count() / self.total) if self.total else 0


async def coverage(
    session: AsyncSession, catalog: Catalog, broadcast: models.Broadcast
) -> Coverage:
    """The campaign's coverage: every household of its grid (of every grid, for a
    campaign to the whole community), with the channels that reached it. The
    database is read here; the joining (addresses parsed, buildings matched: CPU for
    100,000 households) happens in a worker thread."""
    community_id = broadcast.community_id
    scope = [broadcast.grid_key] if broadcast.grid_key else None
    found = Found(
        listed=await households.households(session, community_id, scope),
        index=await households.address_index(session, community_id),
        sent_to=await broadcasts.reached_addresses(session, broadcast.id),
        by_visit=await visits.reached_by_visit(session, community_id, broadcast.id),
        knocked=await visits.nobody_home_only(session, community_id, broadcast.id),
        posted=[
            (post.grid_key, post.buildings)
            for post in await groups.posted_groups(session, broadcast.id)
        ],
    )
    reported = await broadcasts.mass_progress(session, broadcast.id)
    grids = [(g.id, g.name) for g in catalog.document.community.grids]
    return await asyncio.to_thread(assemble, found, grids, reported)


@dataclass(frozen=True)
class Found:
    """What the database says of a campaign, before it is joined up."""

    listed: list[HouseholdInfo]
    index: households.AddressIndex
    sent_to: list[tuple[int, str | None]]
    """(resident id, address as they wrote it) of the followers the account reached."""
    by_visit: set[int]
    knocked: set[int]
    posted: list[tuple[str | None, tuple[str, ...]]]
    """(grid, buildings) of each group the campaign was posted to."""


def assemble(
    found: Found, grids: list[tuple[str, str]], reported: broadcasts.MassProgress
) -> Coverage:
    """The coverage from what was read: pure CPU, run in a thread."""
    homes = households.households_for(found.index, found.sent_to)
    by_account = set(homes.values())
    posted = [(grid, _named(buildings)) for grid, buildings in found.posted]
    by_grid: dict[str, list[HouseholdReach]] = {}
    for household in found.listed:
        reach = HouseholdReach(household)
        if household.id in by_account:
            reach.channels.add(ACCOUNT)
        if household.id in found.by_visit:
            reach.channels.add(VISIT)
        building = building_of_key(household.address_key)
        if any(_in_group(household, building, grid, named) for grid, named in posted):
            reach.channels.add(GROUP)
        reach.nobody_home = household.id in found.knocked and not reach.reached
        by_grid.setdefault(household.grid_key, []).append(reach)
    names = dict(grids)
    order = [key for key, _ in grids]
    return Coverage(
        [
            GridCoverage(key, names.get(key, "其他"), rows)
            for key, rows in sorted(
                by_grid.items(),
                key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order),
            )
        ],
        followers_sent=len(found.sent_to),
        followers_unlinked=len(found.sent_to) - len(homes),
        wechat_reported=reported,
    )


def _named(buildings: tuple[str, ...]) -> set[Building]:
    named: set[Building] = set()
    for entry in buildings:
        named |= buildings_named(entry)
    return named


def _in_group(
    household: HouseholdInfo, building: Building, grid: str | None, named: set[Building]
) -> bool:
    """A group covers the buildings it names, within its grid when it has one."""
    return (grid is None or grid == household.grid_key) and covers(named, building)


def export_rows(found: Coverage) -> tuple[list[str], list[list[object]]]:
    """One row per household, for the street office: grid, household, notes, each
    channel, reached or not."""
    header = ["网格", "住户", "独居老人", "备注", "公众号", "楼栋群", "走访", "是否覆盖"]
    rows: list[list[object]] = []
    for grid in found.grids:
        for reach in grid.households:
            h = reach.household
            rows.append(
                [
                    grid.grid_name,
                    h.label,
                    "是" if h.elderly_alone else "",
                    h.notes,
                    *("✓" if c in reach.channels else "" for c in (ACCOUNT, GROUP, VISIT)),
                    "已覆盖"
                    if reach.reached
                    else ("走访没人在家" if reach.nobody_home else "未覆盖"),
                ]
            )
    return header, rows
