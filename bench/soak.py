#!/usr/bin/env python3
"""Soak test: minutes of mixed WeChat traffic at a steady rate against one real server.

    .venv/bin/python bench/soak.py [--duration 600] [--rate 20] [--sample-every 30]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

One ``python -m bot serve`` runs on a fresh database (a SQLite file in a temp dir by
default; with a PostgreSQL URL a new database ``soak_<random>`` is created on that
server, the URL's own database only serving to connect, and dropped at the end). Its
outbound WeChat API is the fake of ``tests/fake_wechat.py``, run in this process, so
unit notifications, status updates to residents and the broadcast really go out over
HTTP and are counted where they arrive.

Before the run the CLI makes invite codes (``order-menu units invite``) and unit
members bind with them by chat (``绑定 CODE``). Then messages go out open-loop, one
every 1/--rate s, whatever the replies take; each is a signed WeChat push with a fresh
timestamp and a MsgId never used before. A tick serves the oldest step that is due:

* residents (a pool of --residents openids) follow the account, some subscribe to the
  反诈 topic (``订阅 反诈``), ask 我的订单, and above all run whole ordering
  conversations: a need in their words, then the questions the bot asks (session,
  people, building, name, phone, choices …) answered from the reply text, then 确认,
  until the reply carries an order code; some rate their order when it is done;
* unit members take each placed order through 接单 → 开始 → 完成 by chat, a few
  seconds apart, with the code the resident got;
* halfway through, ``order-menu broadcast create --topic anti-fraud --yes`` schedules a
  notice to the topic's subscribers; the server sends it while the traffic goes on.

When no step is due, a new piece of resident work starts, so the rate holds.

Every --sample-every seconds a row is printed: requests, errors, p50/p99/max latency
of the replies received in that window, the server's RSS (VmRSS of its process), and
from its ``/metrics``: the outbox backlog and broadcast deliveries sent. An error is a
status >= 400, a client exception or timeout, a reply of ``success`` where an answer
was expected (it missed the reply deadline), the service's apology text, or a reply the
scripted resident or unit member cannot follow. After the traffic stops, the
notifications and the broadcast are given --drain-timeout s to go out; then the
summary compares RSS before the traffic, after the warm-up (first window) and at the
end, p99 of the first and last windows, and counts errors (also ERROR lines in the
server's log, WeChat API errors and failed notifications), orders placed, accepted,
completed and rated, and broadcast deliveries.

Exit status 0 when every check holds: no error, RSS growth after the warm-up within
--max-rss-growth %, last p99 within --max-p99-ratio of the first (plus --p99-slack-ms),
every subscriber reached by the broadcast. 1 when a check fails, 2 when the run could
not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import xmltodict  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.config import Settings  # noqa: E402
from tests.fake_wechat import CUSTOM_SEND_PATH, TOKEN_PATH, FakeWeChat  # noqa: E402
from tests.ordering_catalog import lecture_day  # noqa: E402
from tests.wechat_server import WeChatServer, sign  # noqa: E402

TOKEN = "soak-token"
APP_ID = "wxsoak000000000001"
APP_SECRET = "soak-app-secret-0123456789abcdef"
TOPIC = "anti-fraud"
TOPIC_NAME = "反诈"
BROADCAST_TITLE = "反诈提醒（压测）"
BROADCAST_TEXT = "陌生来电说退款、中奖、刷单返利，一律挂断，不转账、不透露验证码。"
SORRY = "抱歉，系统刚才出了点小问题"
"""The start of the apology the service answers when a handler failed."""
CODE = re.compile(r"订单号：([2-9A-Z]{6})")
REQUEST_TIMEOUT = 15.0
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
MAX_IN_FLIGHT = 1000
"""More requests than this waiting for replies: the server is stuck; stop adding."""
MAX_STEPS = 15
"""Turns after which a conversation that has not reached an order is given up."""

# --- the community ---------------------------------------------------------------------

UNITS = {
    "property": "阳光物业",
    "clinic": "社区卫生服务中心",
    "law": "共建律师事务所",
    "community": "压测社区居委会",
}
ITEM_UNITS = {
    "水电维修": "property",
    "公共设施报修": "property",
    "楼道杂物清理": "property",
    "健康知识讲座": "clinic",
    "免费法律咨询": "law",
    "高龄津贴申请代办": "community",
}
"""Item title (as the bot names it: 帮您预约「…」) → the unit that receives the order."""

NEEDS: list[tuple[str, int]] = [
    ("水管爆了", 4),
    ("卫生间漏水了", 3),
    ("家里停电跳闸了", 3),
    ("水龙头坏了一直滴水", 2),
    ("小区路灯不亮", 2),
    ("楼道灯坏了", 2),  # one plausible item: offered as a yes/no question
    ("想找律师咨询欠薪的事", 2),
    ("我想做个法律咨询", 1),
    ("想参加健康讲座", 3),  # session, number of people, phone
    ("楼道杂物太多了", 2),  # the item's own form: a choice, then the phone
    ("帮老人申请高龄津贴", 2),  # 代办式: name, building, phone
    ("家里老人需要有人陪着聊聊天", 1),  # nothing fits: 需求清单, then categories
]


def catalog_yaml(extra_items: str = "") -> str:
    """A small catalog: every unit takes its orders by WeChat (its bound members), the
    lecture has one session a week ahead with room for everybody, and 反诈 is a topic
    residents subscribe to themselves (default off), so the broadcast's audience is
    exactly who sent 订阅 反诈. ``extra_items``: more entries of ``items:`` (YAML,
    indented as the others), for benches that need them (bench/kill_soak.py)."""
    day = lecture_day(7)
    units = "\n".join(
        f"  - {{id: {key}, name: {name}, kind: {'社区' if key == 'community' else '企业'}, "
        "channels: [{type: wechat}]}"
        for key, name in UNITS.items()
    )
    return f"""
community:
  id: soakville
  name: 压测社区
  timezone: Asia/Shanghai
  grids:
    - {{id: g1, name: 第一网格, areas: [1栋, 2栋, 3栋]}}
    - {{id: g2, name: 第二网格, areas: [7栋, 8栋]}}
units:
{units}
items:
  - id: home-repair
    title: 水电维修
    unit: property
    category: 物业服务
    keywords: [漏水, 水管, 停电, 跳闸, 水龙头]
    grid_level: true
    description: 水管漏水、电路跳闸等家庭水电小修，物业师傅上门。
  - id: facility-repair
    title: 公共设施报修
    unit: property
    category: 物业服务
    keywords: [路灯, 电梯, 楼道灯]
    description: 路灯、电梯、楼道灯等公共设施坏了，物业来修。
  - id: corridor-cleanup
    title: 楼道杂物清理
    unit: property
    category: 物业服务
    keywords: [楼道杂物, 堆放杂物]
    form:
      - {{id: what, kind: choice, ask: 堆的是什么？, choices: [纸箱, 旧家具, 电动车]}}
      - {{id: phone, kind: phone}}
  - id: health-lecture
    title: 健康知识讲座
    unit: clinic
    category: 健康医疗
    mode: 订单式
    keywords: [健康讲座, 养生知识]
    description: 医生来社区讲养生和慢病管理。
    sessions:
      - {{id: s1, start: "{day} 15:00", end: "{day} 16:30", capacity: 1000000,
          location: 二楼会议室}}
    next_steps: 请按时到二楼会议室，带上医保卡。
{extra_items}  - id: legal-consult
    title: 免费法律咨询
    unit: law
    category: 平安法治
    keywords: [法律咨询, 律师, 打官司, 欠薪]
    description: 律师免费解答法律问题。
  - id: allowance
    title: 高龄津贴申请代办
    unit: community
    category: 为老服务
    mode: 代办式
    keywords: [高龄津贴, 高龄补贴]
    description: 80岁以上老人的高龄津贴，社区帮忙申请。
topics:
  - {{id: {TOPIC}, name: {TOPIC_NAME}, default_on: false}}
  - {{id: events, name: 社区活动, default_on: true}}
"""


# --- measurements ----------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status; (0, 0) if gone."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
    except OSError:
        return 0, 0
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


@dataclass
class Window:
    """What happened in one sampling window (replies counted when they arrive)."""

    index: int
    started: float
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ended: float = 0.0
    rss_kib: int = 0
    outbox_pending: int = 0
    broadcast_sent: int = 0
    placed: int = 0
    completed: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies) * 1000 if self.latencies else math.nan


ROW = "{:>3} {:>6} {:>6} {:>6} {:>4} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>7} {:>6}"
HEADER = ROW.format(
    "#", "t s", "sent", "msg/s", "err", "p50 ms", "p99 ms", "max ms", "RSS MB", "orders", "done",
    "outbox", "bcast",
)  # fmt: skip


def fmt(value: float, spec: str = ".1f") -> str:
    return "-" if math.isnan(value) else format(value, spec)


def window_row(window: Window, t0: float) -> str:
    seconds = window.ended - window.started
    return ROW.format(
        window.index,
        f"{window.ended - t0:.0f}",
        window.sent,
        fmt(window.sent / seconds if seconds > 0 else math.nan),
        sum(window.errors.values()),
        fmt(window.p50),
        fmt(window.p99),
        fmt(window.max_ms),
        f"{window.rss_kib / 1024:.1f}",
        window.placed,
        window.completed,
        window.outbox_pending,
        window.broadcast_sent,
    )


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (comments skipped)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            values[name] = float(value)
    return values


def metric(values: dict[str, float], name: str, **labels: str) -> int:
    inside = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return int(values.get(f"{name}{{{inside}}}" if labels else name, 0))


def by_status(values: dict[str, float], name: str) -> dict[str, int]:
    """{status: value} of a metric labelled by status only."""
    found = (re.fullmatch(name + r'\{status="([^"]*)"\}', k) for k in values)
    return {m[1]: int(values[m[0]]) for m in found if m}


def metric_sum(values: dict[str, float], prefix: str) -> int:
    return int(sum(v for k, v in values.items() if k.startswith(prefix)))


# --- who talks -------------------------------------------------------------------------


class Unexpected(Exception):
    """A reply the scripted resident or member cannot follow."""


@dataclass(eq=False)
class Person:
    openid: str
    holder: Actor | None = None
    """The actor talking as this person now (one message of theirs in flight at a time;
    a resident in a conversation stays held between turns)."""


@dataclass(eq=False)
class Resident(Person):
    phone: str = ""
    building: str = ""
    wants_topic: bool = False
    followed: bool = False
    subscribed: bool = False


@dataclass(eq=False)
class Member(Person):
    unit: str = ""


class Actor:
    """One scripted piece of traffic: ``message`` is the next thing to send,
    ``on_reply`` reads the answer and returns the seconds until the next step (None:
    finished)."""

    kind = "?"
    holds = False
    """Keep the person between steps (a conversation) rather than only per request."""

    def __init__(self, soak: Soak, who: Person) -> None:
        self.soak = soak
        self.who = who

    def message(self) -> tuple[str, dict[str, str]]:
        """(MsgType, fields) of the next message."""
        raise NotImplementedError

    def on_reply(self, reply: str) -> float | None:
        raise NotImplementedError


def text(content: str) -> tuple[str, dict[str, str]]:
    return "text", {"Content": content}


class Follow(Actor):
    kind = "follow"

    def message(self) -> tuple[str, dict[str, str]]:
        return "event", {"Event": "subscribe"}

    def on_reply(self, reply: str) -> float | None:
        if "欢迎关注" not in reply:
            raise Unexpected(f"follow: {reply[:60]!r}")
        assert isinstance(self.who, Resident)
        self.who.followed = True
        return None


class Subscribe(Actor):
    kind = "subscribe"

    def message(self) -> tuple[str, dict[str, str]]:
        return text(f"订阅 {TOPIC_NAME}")

    def on_reply(self, reply: str) -> float | None:
        if f"已为您订阅「{TOPIC_NAME}」" not in reply:
            raise Unexpected(f"subscribe: {reply[:60]!r}")
        assert isinstance(self.who, Resident)
        self.who.subscribed = True
        self.soak.subscribers.add(self.who.openid)
        return None


class MyOrders(Actor):
    kind = "my-orders"

    def message(self) -> tuple[str, dict[str, str]]:
        return text("我的订单")

    def on_reply(self, reply: str) -> float | None:
        if "订单" not in reply:
            raise Unexpected(f"my orders: {reply[:60]!r}")
        return None


class Conversation(Actor):
    """A resident from a need to an order code, answering what the bot asks."""

    kind = "conversation"
    holds = True

    def __init__(self, soak: Soak, who: Resident, need: str) -> None:
        super().__init__(soak, who)
        self.resident = who
        self.next = need
        self.steps = 0
        self.title: str | None = None

    def message(self) -> tuple[str, dict[str, str]]:
        self.steps += 1
        return text(self.next)

    def on_reply(self, reply: str) -> float | None:
        chosen = re.search(r"帮您预约「(.+?)」", reply)
        if chosen:
            self.title = chosen[1]
        placed = CODE.search(reply)
        if placed:
            self.soak.order_placed(self.resident, placed[1], self.title)
            return None
        if self.steps >= MAX_STEPS:
            raise Unexpected(f"no order after {self.steps} turns: {reply[:60]!r}")
        self.next = self.answer(reply)
        return self.soak.rng.uniform(*self.soak.think)

    def answer(self, reply: str) -> str:
        rng = self.soak.rng
        if "请核对" in reply:
            return "确认"
        if "哪一场" in reply or "好几场" in reply:
            return "1"
        if "几位" in reply:
            return rng.choice(["两个人", "1", "3位", "就我一个"])
        if "手机号码" in reply or "号码好像不对" in reply:
            return self.resident.phone
        if "哪栋楼" in reply:
            return self.resident.building
        if "怎么称呼" in reply:
            return rng.choice(["王阿姨", "李大爷", "张奶奶"])
        if "\n1. " in reply:  # categories, items, a choice question, one offered item
            return "1"
        raise Unexpected(f"conversation: {reply[:60]!r}")


class Rate(Actor):
    kind = "rate"

    def __init__(self, soak: Soak, who: Resident, code: str) -> None:
        super().__init__(soak, who)
        self.code = code

    def message(self) -> tuple[str, dict[str, str]]:
        return text(f"评价 {self.code} 5 师傅很耐心")

    def on_reply(self, reply: str) -> float | None:
        if "谢谢您的评价" not in reply:
            raise Unexpected(f"rate {self.code}: {reply[:60]!r}")
        self.soak.counts["rated"] += 1
        return None


class UnitWork(Actor):
    """A unit member takes one order through 接单, 开始 and 完成, seconds apart."""

    kind = "unit"
    WORDS = ("接单", "开始", "完成")

    def __init__(self, soak: Soak, who: Member, code: str, resident: Resident) -> None:
        super().__init__(soak, who)
        self.code = code
        self.resident = resident
        self.stage = 0

    def message(self) -> tuple[str, dict[str, str]]:
        word = self.WORDS[self.stage]
        return text(f"{word} {self.code}" + (" 已上门处理好了" if word == "完成" else ""))

    def on_reply(self, reply: str) -> float | None:
        word = self.WORDS[self.stage]
        if not reply.startswith(f"已{word}：订单 {self.code}"):
            raise Unexpected(f"unit {word}: {reply[:60]!r}")
        soak = self.soak
        soak.counts[{"接单": "accepted", "开始": "started", "完成": "completed"}[word]] += 1
        self.stage += 1
        if self.stage < len(self.WORDS):
            return soak.rng.uniform(*soak.unit_pause)
        if soak.rng.random() < soak.rate_share:  # the resident rates it a little later
            soak.schedule(Rate(soak, self.resident, self.code), soak.rng.uniform(5, 20))
        return None


# --- the load --------------------------------------------------------------------------


@dataclass(order=True)
class Step:
    due: float
    seq: int
    actor: Actor = field(compare=False)


class Soak:
    """The scripted population, the open-loop sender and the per-window figures."""

    def __init__(
        self,
        base_url: str,
        http: aiohttp.ClientSession,
        residents: list[Resident],
        members: dict[str, list[Member]],
        rng: random.Random,
    ) -> None:
        self.base_url = base_url
        self.http = http
        self.residents = residents
        self.members = members
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.steps: list[Step] = []
        self.seq = itertools.count()
        self.msg_ids = itertools.count(int(time.time() * 1000) * 1000)
        self.needs, self.need_weights = zip(*NEEDS, strict=True)
        self.think = (0.5, 3.0)
        """Seconds a resident takes to answer the bot."""
        self.unit_pause = (2.0, 12.0)
        """Seconds between a member's 接单, 开始 and 完成."""
        self.accept_after = (3.0, 20.0)
        """Seconds from an order's placing to its 接单."""
        self.rate_share = 0.5
        self.my_orders_share = 0.08
        self.subscribers: set[str] = set()
        self.orders: dict[str, Resident] = {}
        self.counts: Counter[str] = Counter()
        self.all_errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.latency_by_kind: dict[str, list[float]] = {}
        self.window = Window(0, self.loop.time())
        self.in_flight: set[asyncio.Task[None]] = set()
        self.skipped_ticks = 0
        self.max_lag = 0.0

    # --- scheduling ---

    def schedule(self, actor: Actor, delay: float) -> None:
        heapq.heappush(self.steps, Step(self.loop.time() + delay, next(self.seq), actor))

    def order_placed(self, resident: Resident, code: str, title: str | None) -> None:
        self.counts["placed"] += 1
        self.orders[code] = resident
        unit = ITEM_UNITS.get(title or "")
        if unit is None:
            raise Unexpected(f"order {code} of an unknown item {title!r}")
        member = self.rng.choice(self.members[unit])
        self.schedule(UnitWork(self, member, code, resident), self.rng.uniform(*self.accept_after))

    def pick(self) -> Actor | None:
        """The oldest due step whose person is free, else new resident work."""
        now = self.loop.time()
        waiting: list[Step] = []
        chosen: Actor | None = None
        while self.steps and self.steps[0].due <= now:
            step = heapq.heappop(self.steps)
            if step.actor.who.holder not in (None, step.actor):
                waiting.append(step)  # their previous message is still in flight
                continue
            chosen = step.actor
            break
        for step in waiting:
            self.schedule(step.actor, 0.5)
        return chosen or self.new_work()

    def new_work(self) -> Actor | None:
        for _ in range(20):
            resident = self.rng.choice(self.residents)
            if resident.holder is None:
                break
        else:
            return None
        if not resident.followed:
            return Follow(self, resident)
        if resident.wants_topic and not resident.subscribed:
            return Subscribe(self, resident)
        if self.rng.random() < self.my_orders_share:
            return MyOrders(self, resident)
        need = self.rng.choices(self.needs, self.need_weights)[0]
        return Conversation(self, resident, need)

    async def run(self, seconds: float, rate: float) -> None:
        """One message every 1/rate s for ``seconds``, on an absolute schedule."""
        start = self.loop.time()
        for tick in itertools.count():
            due = start + tick / rate
            if due >= start + seconds:
                break
            delay = due - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.max_lag = max(self.max_lag, -delay)
            if len(self.in_flight) >= MAX_IN_FLIGHT:
                self.record_error("client: too many requests in flight")
                continue
            actor = self.pick()
            if actor is None:
                self.skipped_ticks += 1
                continue
            actor.who.holder = actor
            task = asyncio.create_task(self.fire(actor))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def finish(self, within: float) -> None:
        """Wait up to ``within`` s for the replies still on their way."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=within)

    # --- one message ---

    def record_error(self, kind: str, detail: str = "") -> None:
        self.window.errors[kind] += 1
        self.all_errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {detail}" if detail else kind)

    async def fire(self, actor: Actor) -> None:
        next_in: float | None = None
        try:
            msg_type, fields = actor.message()
            if msg_type != "event":
                fields["MsgId"] = str(next(self.msg_ids))
            self.window.sent += 1
            began = time.perf_counter()
            try:
                status, body = await self.post(actor.who.openid, msg_type, fields)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.record_error(f"client: {type(exc).__name__}", str(exc)[:120])
                return
            took = time.perf_counter() - began
            self.window.latencies.append(took)
            self.latency_by_kind.setdefault(actor.kind, []).append(took)
            if status >= 400:
                self.record_error(f"HTTP {status}", body[:80])
                return
            if body == "success":
                self.record_error("late reply (success)", f"{actor.kind} {fields}")
                return
            reply = reply_text(body)
            if SORRY in reply:
                self.record_error("service apology", f"{actor.kind} {fields.get('Content')}")
                return
            try:
                next_in = actor.on_reply(reply)
            except Unexpected as exc:
                self.record_error(f"unexpected reply ({actor.kind})", str(exc))
        finally:
            if next_in is None or not actor.holds:
                actor.who.holder = None
            if next_in is not None:
                self.schedule(actor, next_in)

    async def post(self, openid: str, msg_type: str, fields: dict[str, str]) -> tuple[int, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
        query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp}
        query["nonce"] = nonce
        xml = WeChatServer.xml(openid, msg_type, int(timestamp), **fields)
        async with self.http.post(
            f"{self.base_url}/wechat?{urllib.parse.urlencode(query)}",
            data=xml.encode(),
            headers={"Content-Type": "text/xml"},
        ) as response:
            return response.status, await response.text()

    async def say(self, openid: str, content: str) -> str:
        """One message outside the measured traffic (binding members); the reply text."""
        fields = {"Content": content, "MsgId": str(next(self.msg_ids))}
        status, body = await self.post(openid, "text", fields)
        if status != 200:
            raise RuntimeError(f"{content!r} from {openid}: HTTP {status} {body[:80]!r}")
        return reply_text(body)


def reply_text(body: str) -> str:
    if not body.startswith("<xml>"):
        return body
    return str(xmltodict.parse(body)["xml"].get("Content") or "")


# --- processes and databases -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, catalog: Path, port: int, api_base: str) -> dict[str, str]:
    """This environment without any order-menu setting, plus the soak's own."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(
        DATABASE_URL=database_url,
        CATALOG_PATH=str(catalog),
        WECHAT_TOKEN=TOKEN,
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_API_BASE=api_base,
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        # Notifications and the broadcast go out whatever the hour of the run.
        QUIET_HOURS="00:00-00:00",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


async def cli(env: dict[str, str], workdir: Path, *args: str, stdin: str | None = None) -> str:
    """Run ``python -m bot ARGS`` (``stdin``: its input); its output, or RuntimeError
    with its error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(None if stdin is None else stdin.encode())
    if process.returncode != 0:
        raise RuntimeError(
            f"order-menu {' '.join(args[:2])} failed ({process.returncode}): "
            f"{err.decode(errors='replace').strip()[-500:]}"
        )
    return out.decode()


class Server:
    """``python -m bot serve`` in a subprocess, its output in a log file (appended to
    when the server is started again)."""

    def __init__(
        self, env: dict[str, str], workdir: Path, port: int, log_name: str = "server.log"
    ) -> None:
        self.env = env
        self.workdir = workdir
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / log_name
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> float:
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                env=self.env,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl+C reaches only us; we stop the server
            )
        while time.monotonic() - began < READY_TIMEOUT:
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"the server exited with status {self.process.returncode} before it was "
                    f"ready:\n{self.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(f"{self.base_url}/readyz") as response:
                    if response.status == 200:
                        return time.monotonic() - began
            await asyncio.sleep(0.3)
        raise RuntimeError(f"the server was not ready after {READY_TIMEOUT:.0f} s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stop(self) -> str:
        process = self.process
        if process is None:
            return "was not started"
        if process.returncode is not None:
            return f"had already exited with status {process.returncode}"
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        try:
            status = await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            return f"did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM: killed"
        return f"stopped in {time.monotonic() - began:.1f} s (exit status {status})"

    def log_records(self) -> Iterator[dict[str, Any]]:
        """The server's JSON log lines (other lines as {'level': 'RAW', 'msg': line})."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            yield record if isinstance(record, dict) else {"level": "RAW", "msg": line}

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "    (no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


class Database:
    """The soak's database: a SQLite file, or a PostgreSQL database made for the run."""

    def __init__(self, given: str | None, workdir: Path, prefix: str = "soak") -> None:
        self.created: str | None = None
        self.admin_url = given
        if given is None:
            self.url = f"sqlite+aiosqlite:///{workdir / 'soak.db'}"
            return
        url = make_url(given)
        if url.drivername != "postgresql+asyncpg":
            raise SystemExit(f"--database-url: expected postgresql+asyncpg://…, got {given!r}")
        self.created = f"{prefix}_{secrets.token_hex(4)}"
        self.url = url.set(database=self.created).render_as_string(hide_password=False)

    def describe(self) -> str:
        if self.created is None:
            return "SQLite (a fresh file in the temp dir)"
        return f"PostgreSQL {make_url(self.url).render_as_string(hide_password=True)} (new)"

    async def _admin(self, statement: str) -> None:
        import asyncpg

        assert self.admin_url is not None
        url = make_url(self.admin_url)
        connection = await asyncpg.connect(
            user=url.username,
            password=url.password,
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            database=url.database or "postgres",
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create(self) -> None:
        if self.created is not None:
            await self._admin(f'CREATE DATABASE "{self.created}"')

    async def drop(self) -> None:
        if self.created is not None:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.created}" WITH (FORCE)')


# --- the run ---------------------------------------------------------------------------


async def scrape(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    try:
        async with http.get(f"{base_url}/metrics") as response:
            if response.status != 200:
                return {}
            return parse_metrics(await response.text())
    except (aiohttp.ClientError, TimeoutError, OSError):
        return {}


def sent_messages(fake: FakeWeChat) -> list[tuple[str, str]]:
    """(touser, text) of every customer-service message the fake accepted."""
    return [
        (str(body.get("touser")), str((body.get("text") or {}).get("content", "")))
        for body in fake.sent
        if body.get("msgtype") == "text"
    ]


async def bind_members(
    soak: Soak, env: dict[str, str], workdir: Path, per_unit: int
) -> dict[str, list[Member]]:
    """Invite codes from the CLI, then ``绑定 CODE`` from each member's WeChat."""
    members: dict[str, list[Member]] = {}
    for unit in UNITS:
        for n in range(per_unit):
            output = await cli(env, workdir, "units", "invite", unit, "--hours", "24")
            found = re.search(r"绑定 (\S+)", output)
            if not found:
                raise RuntimeError(f"no invite code in: {output!r}")
            member = Member(openid=f"o_soak_unit_{unit}_{n}", unit=unit)
            reply = await soak.say(member.openid, f"绑定 {found[1]}")
            if "绑定成功" not in reply:
                raise RuntimeError(f"binding {member.openid} failed: {reply!r}")
            members.setdefault(unit, []).append(member)
    return members


async def broadcast_midway(
    delay: float, env: dict[str, str], workdir: Path, soak: Soak, out: dict[str, Any]
) -> None:
    """Schedule the broadcast with the CLI ``delay`` s into the run."""
    await asyncio.sleep(delay)
    out["subscribers_known"] = set(soak.subscribers)
    out["at"] = time.monotonic()
    try:
        output = await cli(
            env,
            workdir,
            "broadcast",
            "create",
            "--topic",
            TOPIC,
            "--title",
            BROADCAST_TITLE,
            "--text",
            BROADCAST_TEXT,
            "--yes",
        )
    except RuntimeError as exc:
        out["error"] = str(exc)
        soak.record_error("broadcast create failed", str(exc)[:200])
        return
    recipients = re.search(r"to: (\d+) subscribed", output)
    scheduled = re.search(r"scheduled: broadcast (\d+)", output)
    out["recipients"] = int(recipients[1]) if recipients else None
    out["id"] = int(scheduled[1]) if scheduled else None
    print(
        f"    [{delay:.0f} s] broadcast {out['id']} scheduled by the CLI for "
        f"{out['recipients']} subscribers of {TOPIC_NAME}",
        flush=True,
    )


def population(
    args: argparse.Namespace, rng: random.Random, prefix: str = "o_soak_resident"
) -> tuple[list[Resident], FakeWeChat]:
    """--residents residents (a share of them --subscribe-share wanting 反诈), and the
    fake WeChat that knows them and the unit members ``bind_members`` binds."""
    residents = [
        Resident(
            openid=f"{prefix}_{n:04d}",
            phone=f"13{rng.randrange(10**9):09d}",
            building=f"{rng.choice([1, 2, 3, 7, 8])}栋{rng.randint(1, 4)}单元",
            wants_topic=rng.random() < args.subscribe_share,
        )
        for n in range(args.residents)
    ]
    fake = FakeWeChat(app_id=APP_ID, app_secret=APP_SECRET)
    for resident in residents:
        fake.add_user(resident.openid)
    for unit in UNITS:
        for n in range(args.members_per_unit):
            fake.add_user(f"o_soak_unit_{unit}_{n}")
    return residents, fake


async def soak_run(args: argparse.Namespace, workdir: Path) -> int:
    rng = random.Random(args.seed)
    database = Database(args.database_url, workdir)
    catalog = workdir / "catalog.yaml"
    catalog.write_text(catalog_yaml(), encoding="utf-8")
    residents, fake = population(args, rng)

    port = free_port()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    server: Server | None = None
    await database.create()
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            await fake.start()
            env = server_env(database.url, catalog, port, fake.base_url)
            server = Server(env, workdir, port)
            print(f"database: {database.describe()}")
            print(f"server:   {sys.executable} -m bot serve  (WeChat API: fake at {fake.base_url})")
            took = await server.start(http)
            print(f"          ready in {took:.1f} s, pid {server.pid}", flush=True)
            soak = Soak(server.base_url, http, residents, {}, rng)
            soak.members = await bind_members(soak, env, workdir, args.members_per_unit)
            bound = sum(len(m) for m in soak.members.values())
            print(f"units:    {bound} members bound by chat with CLI invite codes", flush=True)
            return await measure(args, soak, server, fake, http, env, workdir)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            print(f"server {await server.stop()}")
        await fake.stop()
        if args.keep:
            kept = f", database {database.created}" if database.created else ""
            print(f"kept: {workdir}{kept}")
        else:
            await database.drop()


async def measure(
    args: argparse.Namespace,
    soak: Soak,
    server: Server,
    fake: FakeWeChat,
    http: aiohttp.ClientSession,
    env: dict[str, str],
    workdir: Path,
) -> int:
    loop = asyncio.get_running_loop()
    rss_start, _ = rss_kib(server.pid)
    windows: list[Window] = []
    broadcast: dict[str, Any] = {}
    print(
        f"traffic:  {args.rate:g} msg/s for {args.duration:g} s, {len(soak.residents)} "
        f"residents; broadcast at {args.broadcast_at:g} s; RSS before: "
        f"{rss_start / 1024:.1f} MB",
        flush=True,
    )
    print()
    print(HEADER, flush=True)
    t0 = loop.time()
    soak.window = Window(1, t0)

    def close_window(now: float, metrics: dict[str, float]) -> None:
        window = soak.window
        window.ended = now
        window.rss_kib = rss_kib(server.pid)[0]
        window.outbox_pending = metric(metrics, "om_outbox", status="pending")
        window.broadcast_sent = metric(metrics, "om_broadcast_deliveries", status="sent")
        window.placed = soak.counts["placed"]
        window.completed = soak.counts["completed"]
        windows.append(window)
        print(window_row(window, t0), flush=True)
        soak.window = Window(window.index + 1, now)

    async def sampler() -> None:
        boundary = t0
        while True:
            boundary += args.sample_every
            if boundary >= t0 + args.duration - 1e-6:
                return  # the last window closes when the replies are in
            await asyncio.sleep(boundary - loop.time())
            now = loop.time()
            close_window(now, await scrape(http, server.base_url))

    sampling = asyncio.create_task(sampler())
    announcing = asyncio.create_task(
        broadcast_midway(args.broadcast_at, env, workdir, soak, broadcast)
    )
    await soak.run(args.duration, args.rate)
    await soak.finish(REQUEST_TIMEOUT + 5)
    await sampling
    with contextlib.suppress(asyncio.CancelledError):
        if not announcing.done():
            announcing.cancel()
        await announcing
    close_window(loop.time(), await scrape(http, server.base_url))

    # Drain: what the traffic caused still goes out (outbox, broadcast).
    drain_began = loop.time()
    metrics = await scrape(http, server.base_url)
    while loop.time() - drain_began < args.drain_timeout:
        busy = metric(metrics, "om_outbox", status="pending") + sum(
            metric(metrics, "om_broadcast_deliveries", status=s) for s in ("pending", "sending")
        )
        if busy == 0:
            break
        await asyncio.sleep(2)
        metrics = await scrape(http, server.base_url)
    drained_in = loop.time() - drain_began
    rss_end, rss_peak = rss_kib(server.pid)
    return report(
        args, soak, server, fake, windows, broadcast, metrics, rss_start, rss_end, rss_peak,
        drained_in,
    )  # fmt: skip


def report(
    args: argparse.Namespace,
    soak: Soak,
    server: Server,
    fake: FakeWeChat,
    windows: list[Window],
    broadcast: dict[str, Any],
    metrics: dict[str, float],
    rss_start: int,
    rss_end: int,
    rss_peak: int,
    drained_in: float,
) -> int:
    failures: list[str] = []
    print()
    print("summary")

    # Memory: before the traffic, after the warm-up (the first window), at the end.
    warm = next((w for w in windows if w.ended - windows[0].started >= args.warmup), windows[0])
    growth = 100.0 * (rss_end - warm.rss_kib) / warm.rss_kib if warm.rss_kib else math.nan
    later = [w for w in windows if w.index >= warm.index]
    trend = rss_trend(later)
    print(
        f"  RSS (server pid {server.pid}): start {rss_start / 1024:.1f} MB, after warm-up "
        f"(window {warm.index}) {warm.rss_kib / 1024:.1f} MB, end {rss_end / 1024:.1f} MB "
        f"→ {growth:+.1f}% since warm-up, {pct(rss_end, rss_start)} since start; "
        f"peak {rss_peak / 1024:.1f} MB"
    )
    print(f"    trend after warm-up (least squares): {trend:+.2f} MB per 10 min")
    if math.isnan(growth) or growth > args.max_rss_growth:
        failures.append(f"RSS grew {growth:+.1f}% after warm-up (limit {args.max_rss_growth}%)")

    # Latency: first against last window, and over the whole run by kind of traffic.
    first, last = windows[0], windows[-1]
    allowed = max(first.p99 * args.max_p99_ratio, first.p99 + args.p99_slack_ms)
    every = [x for w in windows for x in w.latencies]
    print(
        f"  p99: first window {fmt(first.p99)} ms, last window {fmt(last.p99)} ms "
        f"(allowed {fmt(allowed)} ms); whole run p50 {fmt(percentile(every, 0.5) * 1000)} ms, "
        f"p99 {fmt(percentile(every, 0.99) * 1000)} ms, max {fmt(max(every, default=0) * 1000)} ms"
    )
    for kind, values in sorted(soak.latency_by_kind.items()):
        print(
            f"    {kind:<13} {len(values):>7} replies  p50 {percentile(values, 0.5) * 1000:6.1f}"
            f" ms  p99 {percentile(values, 0.99) * 1000:7.1f} ms"
        )
    if not last.p99 <= allowed:
        failures.append(f"p99 rose from {fmt(first.p99)} to {fmt(last.p99)} ms")

    # Errors: the client's, the server log's, the WeChat API's, the outbox's.
    sent = sum(w.sent for w in windows)
    seconds = windows[-1].ended - windows[0].started
    client_errors = sum(soak.all_errors.values())
    log_levels = Counter(str(r.get("level")) for r in server.log_records())
    log_errors = [r for r in server.log_records() if r.get("level") in ("ERROR", "CRITICAL")]
    api_errors = metric_sum(metrics, "om_wechat_api_errors_total{")
    outbox_failed = metric(metrics, "om_outbox", status="failed")
    print(
        f"  requests: {sent} in {seconds:.0f} s ({sent / seconds:.1f}/s, target {args.rate:g}); "
        f"skipped ticks {soak.skipped_ticks}; worst schedule lag {soak.max_lag * 1000:.0f} ms"
    )
    print(
        f"  errors: {client_errors} in the traffic, {len(log_errors)} ERROR lines in the server "
        f"log ({log_levels.get('WARNING', 0)} WARNING), {api_errors} WeChat API errors, "
        f"{outbox_failed} failed notifications"
    )
    for kind, n in soak.all_errors.most_common():
        print(f"    {n:>6}  {kind}")
    for sample in soak.error_samples[:10]:
        print(f"      e.g. {sample}")
    for record in log_errors[:5]:
        print(f"    log: {str(record.get('msg'))[:160]}")
    total_errors = client_errors + len(log_errors) + api_errors + outbox_failed
    if total_errors > args.max_errors:
        failures.append(f"{total_errors} errors (allowed {args.max_errors})")

    # Orders, and what reached WeChat for them.
    counts = soak.counts
    messages = sent_messages(fake)
    member_ids = {m.openid for ms in soak.members.values() for m in ms}
    unit_new = sum(1 for to, body in messages if to in member_ids and body.startswith("【新订单】"))
    resident_news = sum(1 for _, body in messages if body.startswith("您的订单 "))
    print(
        f"  orders: {counts['placed']} placed, {counts['accepted']} accepted, "
        f"{counts['started']} started, {counts['completed']} completed, {counts['rated']} rated"
    )
    statuses = by_status(metrics, "om_orders")
    print(f"    in the database: {sum(statuses.values())} orders {statuses}")
    print(
        f"  notifications over HTTP (fake WeChat): {unit_new} new-order messages to unit "
        f"members, {resident_news} status updates to residents, "
        f"{len(fake.calls(TOKEN_PATH))} access-token fetches, "
        f"{len(fake.calls(CUSTOM_SEND_PATH))} customer-service calls"
    )
    backlog = [w.outbox_pending for w in windows]
    print(
        f"    outbox backlog (pending) at window ends: first {backlog[0]}, last {backlog[-1]}, "
        f"max {max(backlog)}"
    )
    outbox = by_status(metrics, "om_outbox")
    print(f"    outbox after {drained_in:.0f} s of draining: {outbox}")
    if outbox.get("pending", 0):
        failures.append(f"{outbox['pending']} notifications still pending after the drain")

    # The broadcast.
    if broadcast.get("id") is None:
        print(f"  broadcast: not created ({broadcast.get('error', 'the run ended first')})")
        failures.append("no broadcast")
    else:
        got = {to for to, body in messages if body.startswith(f"【{BROADCAST_TITLE}】")}
        known: set[str] = broadcast["subscribers_known"]
        missing = known - got
        deliveries = by_status(metrics, "om_broadcast_deliveries")
        print(
            f"  broadcast {broadcast['id']}: {broadcast['recipients']} recipients when created, "
            f"deliveries {deliveries}; {len(got)} residents received it at the fake WeChat; "
            f"{len(missing)} of the {len(known)} subscribed before it was created missed it"
        )
        if missing or deliveries.get("sent", 0) < len(known) or set(deliveries) - {"sent"}:
            failures.append("the broadcast did not reach every subscriber exactly as sent")
    print()
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS: flat memory, stable p99, no errors, broadcast delivered")
    return 0


def pct(now: int, before: int) -> str:
    return f"{100.0 * (now - before) / before:+.1f}%" if before else "n/a"


def rss_trend(windows: list[Window]) -> float:
    """Least-squares slope of RSS over the windows, in MB per 10 minutes."""
    if len(windows) < 2:
        return 0.0
    xs = [w.ended for w in windows]
    ys = [w.rss_kib / 1024 for w in windows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return 600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Mixed WeChat traffic at a steady rate: flat memory, stable p99, no errors."
    )
    parser.add_argument("--duration", type=float, default=600, help="Seconds of traffic.")
    parser.add_argument("--rate", type=float, default=20, help="Messages per second, steady.")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server to create the run's database on, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (default: SQLite in a temp dir)",
    )
    parser.add_argument("--sample-every", type=float, default=30, help="Seconds per window.")
    parser.add_argument("--residents", type=int, default=300, help="Resident openids.")
    parser.add_argument("--members-per-unit", type=int, default=2, help="Bound members per unit.")
    parser.add_argument(
        "--subscribe-share", type=float, default=0.5, help="Residents who subscribe to 反诈."
    )
    parser.add_argument(
        "--broadcast-at", type=float, default=None, help="Seconds into the run (default: half)."
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="Seconds before the RSS baseline is taken (default: one window).",
    )
    parser.add_argument("--max-rss-growth", type=float, default=20.0, help="Percent after warm-up.")
    parser.add_argument(
        "--max-p99-ratio", type=float, default=2.0, help="Last window's p99 ÷ the first's."
    )
    parser.add_argument(
        "--p99-slack-ms",
        type=float,
        default=50.0,
        help="A rise of p99 up to this many ms always passes (small numbers are noisy).",
    )
    parser.add_argument("--max-errors", type=int, default=0, help="Errors tolerated.")
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="Seconds for the outbox to empty."
    )
    parser.add_argument("--seed", type=int, default=None, help="Random seed of the traffic.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temp dir (server log) and the database."
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.sample_every <= 0:
        parser.error("--duration, --rate and --sample-every must be positive")
    if args.residents < 1 or args.members_per_unit < 1:
        parser.error("--residents and --members-per-unit must be at least 1")
    if args.broadcast_at is None:
        args.broadcast_at = args.duration / 2
    if args.warmup is None:
        args.warmup = min(args.sample_every, args.duration)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"CPUs: {os.cpu_count()}   Python {sys.version.split()[0]}   workdir {workdir}")
    try:
        return asyncio.run(soak_run(args, workdir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
