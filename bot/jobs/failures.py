"""Notifications that could not be delivered: why, in words staff use, and sending
them again once the cause is fixed.

A row the outbox worker gave up on keeps its cause as a code (``cause``, set by
``bot.jobs.outbox``). The console shows the order marked, with :func:`reason_zh`;
the row goes out again, the same row under the same key, when:

* a member of the unit binds (``handlers.units``, in the binding's transaction:
  :func:`storage.repositories.deliveries.resend_to_new_member`);
* the environment variable a channel needs is set (this module's
  :class:`SettingsCheck`, at start-up and every few minutes, in the process that
  sends the outbox);
* staff press 重新发送 on the order page (``bot.web.deliveries``).

Only notifications of orders still open are sent again by themselves: telling a
unit today of an order closed last week helps nobody.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.repositories import deliveries

log = logging.getLogger(__name__)

CAUSES = {
    "no_member": "这个单位还没有人绑定微信，有人绑定后会自动补发。",
    "not_following": "居民已取消关注公众号，消息发不出去。",
    "window_closed": "居民超过两天没有和公众号说话，微信不让主动发消息。",
    "refused": "单位自己的系统拒收了这条通知。",
    "gave_up": "微信多次没有接收，已停止重试。",
    "unknown": "消息发出后没有收到微信的答复，可能已经送到，也可能没有。",
    "abandoned": "发送时服务中断了，可能已经送到，也可能没有。",
    "community": "这个社区的公众号没有在本服务里设置，请联系技术人员。",
    "channel": "这个单位的通知方式写错了，请联系技术人员检查服务清单。",
}
"""Why a notification was not delivered (the row's ``cause``), as staff are told."""

SETTING_REASONS = {
    "wecom_robot": "单位的企业微信机器人地址没有配置，配置好后会自动补发。",
    "webhook": "单位系统的对接密钥没有配置，配置好后会自动补发。",
}

CHANNELS_ZH = {
    "wechat": "单位成员的微信",
    "wecom_robot": "单位的企业微信群",
    "webhook": "单位自己的系统",
    "log": "服务日志",
    "resident": "居民",
}
"""Who a notification was for, as staff say it."""


def reason_zh(cause: str | None, channel: str) -> str:
    """Why, in a plain sentence (never the technical error)."""
    if cause and cause.startswith(deliveries.SETTING):
        return SETTING_REASONS.get(channel, "发送通知需要的设置没有配置，配置好后会自动补发。")
    return CAUSES.get(cause or "", "通知没有送到。")


def env_is_set(name: str) -> bool:
    return bool(os.environ.get(name))


class SettingsCheck:
    """Rows that failed for want of a setting, sent again once the setting exists.

    Registered ``leader_only`` next to the outbox worker: the process that sends them
    is the one whose environment is checked (another process with the variable set
    would otherwise put back rows its leader can only fail again)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        communities: Callable[[], Collection[str]],
        clock: Clock,
        is_set: Callable[[str], bool] = env_is_set,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._communities = communities
        self._clock = clock
        self._is_set = is_set

    async def run_once(self) -> int:
        async with self._sessionmaker.begin() as session:
            resent = await deliveries.resend_configured(
                session, list(self._communities()), self._is_set, self._clock.now()
            )
        if resent:
            log.info("%d notification(s) sent again: the setting they need is there now", resent)
        return resent
