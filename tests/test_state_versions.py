"""Conversation states are saved compare-and-set: a save made on a stale reading (two
messages of one resident handled at once, a resident lock lost) is refused instead of
undoing the other save. The interleaving is reproduced on the real storage: two
readings, two saves."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.pipeline.state import DatabaseStateStorage
from storage.batch import BatchDatabase
from storage.engine import create_engine
from storage.repositories.states import StateConflict


async def test_a_save_on_a_stale_reading_is_refused_not_applied(db_url: str) -> None:
    engine = create_engine(db_url)
    db = BatchDatabase.for_engine(engine)
    states = DatabaseStateStorage(db, dt.timedelta(minutes=30))
    key = ("jiedong", "o_twice")
    try:
        for first_state in (None, "order.form"):  # no row yet, then an existing row
            if first_state is not None:
                start = await states.load(key)
                start.set(first_state, q=0)
                await states.save(key, start)
            first, second = await states.load(key), await states.load(key)
            first.set("order.summary", q=3)
            await states.save(key, first)
            second.set("feedback.cancel", code="AB23CD")
            with pytest.raises(StateConflict):
                await states.save(key, second)
            kept = await states.load(key)
            assert kept.state == "order.summary" and kept.data == {"q": 3}
            kept.clear()
            await states.save(key, kept)
    finally:
        await states.close()
        await db.close()
        await engine.dispose()
