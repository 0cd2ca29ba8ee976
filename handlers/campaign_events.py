"""WeChat's own reports about campaigns: the ``MASSSENDJOBFINISH`` event, which comes
some minutes after a mass send (群发) with how many followers it reached.

The event names the job by its ``MsgID``, the ``msg_id`` WeChat gave the batch when it
took it (``bot.jobs.broadcasts``). Its counts are recorded on that batch for the
campaign's progress and coverage; the same event again (WeChat retries it like any
message) writes the same values. A job this service did not send (a mass send from
WeChat's own console) is logged and otherwise ignored. Nobody is answered: the event
comes from WeChat, not from a resident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.dispatch import Context, Event, Router
from bot.wechat.inbound import Incoming
from storage.repositories.broadcasts import JobFinished, record_finish

log = logging.getLogger(__name__)

router = Router("campaign_events")


def _count(raw: Mapping[str, Any], name: str) -> int:
    try:
        return max(0, int(str(raw.get(name, "0")).strip() or 0))
    except ValueError:
        return 0


@router.on(Event("MASSSENDJOBFINISH"))
async def mass_job_finished(msg: Incoming, ctx: Context) -> None:
    raw = msg.raw
    try:
        msg_id = int(str(raw.get("MsgID") or raw.get("MsgId") or "").strip())
    except ValueError:
        log.warning("MASSSENDJOBFINISH without a usable MsgID (%r): ignored", raw.get("MsgID"))
        return None
    finished = JobFinished(
        msg_id=msg_id,
        status=str(raw.get("Status", "")),
        total=_count(raw, "TotalCount"),
        filtered=_count(raw, "FilterCount"),
        sent=_count(raw, "SentCount"),
        errors=_count(raw, "ErrorCount"),
    )
    async with ctx.sessionmaker.begin() as session:
        found = await record_finish(session, ctx.community_id, finished, ctx.clock.now())
    if found:
        log.info(
            "mass job %d finished (%s): %d of %d sent",
            msg_id,
            finished.status,
            finished.sent,
            finished.total,
        )
    else:
        log.info("mass job %d finished, but no campaign batch of ours has it", msg_id)
    return None
