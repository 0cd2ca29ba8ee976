"""Values an instance generates for itself once and keeps (the development token)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import dialect_name
from storage.models import InstanceSetting


async def get_or_create(session: AsyncSession, key: str, make: Callable[[], str]) -> str:
    """Return the stored value, creating it with ``make()`` if there is none.

    Safe when several processes start together: the insert does nothing on conflict
    and everyone then reads the one value that won.
    """
    insert = pg_insert if dialect_name(session) == "postgresql" else sqlite_insert
    await session.execute(
        insert(InstanceSetting).values(key=key, value=make()).on_conflict_do_nothing()
    )
    value = await session.scalar(select(InstanceSetting.value).where(InstanceSetting.key == key))
    assert value is not None
    return value


async def get_value(session: AsyncSession, key: str) -> str | None:
    return await session.scalar(select(InstanceSetting.value).where(InstanceSetting.key == key))
