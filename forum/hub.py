"""Live fan-out: committed events reach every matching subscription, in seq order.

The writer (or, on PostgreSQL, the LISTEN connection for other processes'
commits) tells the hub that the log advanced. A single hub task applies those
advances in order: it fills any gap from the database, then hands each event
to every live subscription whose filter matches. Handing over never waits:
each subscription has a bounded share of its connection's :class:`Outbox`,
and a subscription whose queue is full (in bytes: its own budget, its
connection's or its client address's) is closed with a reason and a resume
hint instead of slowing anyone else down. The client resumes with
``after_seq`` = the last seq it saw.

Catching up (stored events before LIVE) runs in the subscription's own task,
reading pages from the database up to ``hub.head`` and switching to live only
when it has reached ``hub.head``. Both happen on one event loop, and the
switch has no ``await`` between the check and the flip, so no event can fall
between the stored pages and the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import orjson
import structlog

from forum.metrics import Metrics
from forum.protocol import wire
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Event
from forum.protocol.filters import Filter
from forum.store import Store, Stored

log = structlog.get_logger("forum.hub")


INDEXED_FIELDS = ("ids", "refs", "authors", "tags", "kinds")


def match_key(f: Filter) -> Filter:
    """What live matching depends on: the filter without after_seq and limit."""
    if f.after_seq is None and f.limit is None:
        return f
    return dataclasses.replace(f, after_seq=None, limit=None)


def index_field(f: Filter) -> str | None:
    """The list field a live filter is indexed by (the most selective one it sets)."""
    for name in INDEXED_FIELDS:
        if getattr(f, name) is not None:
            return name
    return None


class AddressBudget:
    """What every connection of one client address shares: the bytes queued for them
    (``limit``, 0 = unlimited) and the catch-up reads they may run at once (``reads``)."""

    __slots__ = ("limit", "reads", "used")

    def __init__(self, limit: int, reads: int = 0) -> None:
        self.limit = limit
        self.used = 0
        self.reads = asyncio.Semaphore(reads) if reads else None


class Outbox:
    """The outgoing frames of one connection, drained by its transport's sender task.

    Everything queued is counted in bytes (characters of JSON text): per
    subscription (``Subscription.queued``), per connection and per client
    address (:class:`AddressBudget`). Frames of no subscription (OK, NOTICE,
    CLOSED, LIVE) are counted apart in ``control``; past ``control_limit`` the
    outbox is *overflowed* and the connection is closed (``on_overflow``).
    The reader stops reading while :meth:`reader_room` says so (back-pressure).
    """

    def __init__(
        self,
        *,
        limit: int = 1 << 40,
        control_limit: int = 1 << 40,
        address: AddressBudget | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.frames: deque[tuple[str, Subscription | None]] = deque()
        self.ready = asyncio.Event()
        self.closed = False
        self.limit = limit
        self.control_limit = control_limit
        self.address = address
        self.on_overflow = on_overflow
        self.bytes = 0
        self.control = 0
        self.overflowed = False
        self._room: asyncio.Event | None = None  # waiters of reader_room / wait_room

    def fits(self, sub: Subscription, size: int, limit: int, share: float = 1.0) -> bool:
        """Would a frame of ``size`` for ``sub`` stay within ``share`` of every budget?

        ``limit`` is the subscription's budget. A frame always fits an empty outbox.
        """
        if sub.queued == 0 and self.bytes == 0:
            return True
        if sub.queued + size > limit * share or self.bytes + size > self.limit * share:
            return False
        a = self.address
        return a is None or not a.limit or a.used + size <= a.limit * share

    def put(self, frame: str, sub: Subscription | None = None) -> None:
        if self.closed:
            return
        size = len(frame)
        self.frames.append((frame, sub))
        self.bytes += size
        if self.address is not None:
            self.address.used += size
        if sub is not None:
            sub.queued += size
        else:
            self.control += size
            if self.control > self.control_limit and not self.overflowed:
                self.overflowed = True
                if self.on_overflow is not None:
                    self.on_overflow()
        self.ready.set()

    def offer(self, frame: str, sub: Subscription, limit: int) -> bool:
        """:meth:`put` an EVENT frame of ``sub`` if it :meth:`fits` (``limit``: the subscription's
        budget); False, with nothing queued, if it does not. The hub's per-frame path, in one call."""
        size = len(frame)
        if not self.fits(sub, size, limit):
            return False
        if self.closed:
            return True
        if not self.frames:
            self.ready.set()  # the sender waits only on an empty outbox
        self.frames.append((frame, sub))
        self.bytes += size
        if self.address is not None:
            self.address.used += size
        sub.queued += size
        return True

    def _popped(self, frame: str, sub: Subscription | None) -> None:
        size = len(frame)
        self.bytes -= size
        if self.address is not None:
            self.address.used -= size
        if sub is not None:
            sub.sent(size)
        else:
            self.control -= size
        if self._room is not None:
            self._room.set()

    async def get(self) -> str | None:
        """The next frame, or None once closed and drained."""
        while not self.frames:
            if self.closed:
                return None
            self.ready.clear()
            await self.ready.wait()
        frame, sub = self.frames.popleft()
        self._popped(frame, sub)
        return frame

    async def take(self, max_bytes: int) -> list[str] | None:
        """The queued frames (at least one, then up to ``max_bytes`` of them), or None once closed and drained."""
        while not self.frames:
            if self.closed:
                return None
            self.ready.clear()
            await self.ready.wait()
        frames = self.frames
        out: list[str] = []
        size = control = 0
        while frames and size < max_bytes:  # _popped, once for the batch
            frame, sub = frames.popleft()
            out.append(frame)
            n = len(frame)
            size += n
            if sub is not None:
                sub.queued -= n
            else:
                control += n
        self.bytes -= size
        self.control -= control
        if self.address is not None:
            self.address.used -= size
        if self._room is not None:
            self._room.set()
        return out

    def reader_full(self) -> bool:
        """True while the reader of this connection should not read (back-pressure)."""
        return not self.closed and (self.control > self.control_limit // 4 or self.bytes >= self.limit)

    async def reader_room(self) -> None:
        """Wait until :meth:`reader_full` is false."""
        while self.reader_full():
            await self._wait()

    async def _wait(self) -> None:
        if self._room is None:
            self._room = asyncio.Event()
        ev = self._room
        ev.clear()
        await ev.wait()

    async def wait_room(self, sub: Subscription, size: int, limit: int) -> None:
        """Wait until a frame of ``size`` for ``sub`` fits in half of each budget (catch-up pacing)."""
        while not (self.closed or sub.closed or self.fits(sub, size, limit, 0.5)):
            if self.bytes == 0:
                await asyncio.sleep(0.05)  # the other connections of this address must drain first
            else:
                await self._wait()

    def abandon(self) -> None:
        """Close and drop what is queued (waking every waiter)."""
        self.close()
        while self.frames:
            frame, sub = self.frames.popleft()
            self._popped(frame, sub)

    def close(self) -> None:
        self.closed = True
        self.ready.set()
        if self._room is not None:
            self._room.set()


@dataclass(eq=False)
class Subscription:
    outbox: Outbox
    sub_id: str
    filter: Filter
    cursor: int = 0  # last seq considered for this subscription
    live: bool = False
    queued: int = 0  # bytes of this subscription in its outbox
    sent_seq: int = 0  # seq of the last EVENT queued (the resume hint when closed)
    closed: bool = False
    sub_json: str = field(init=False)
    event_prefix: str = field(init=False)  # its EVENT frames start so (wire.event_prefix)

    def __post_init__(self) -> None:
        self.sub_json = orjson.dumps(self.sub_id).decode()
        self.event_prefix = wire.event_prefix(self.sub_json)

    def sent(self, size: int) -> None:
        self.queued -= size


class Hub:
    """Owns the set of live subscriptions and the head of what has been delivered."""

    def __init__(self, store: Store, metrics: Metrics, *, queue_bytes: int, page: int = 500, catch_up_reads: int = 0) -> None:
        self.store = store
        self.metrics = metrics
        self.queue_bytes = queue_bytes  # per subscription
        self.page = page  # most rows one catch-up read returns
        # Catch-up reads of the log running at once in this process (0 = no bound), so that
        # a thousand catching-up connections cannot take every database connection (the
        # writer, /healthz and everyone else's reads would queue behind them).
        self.read_slots = asyncio.Semaphore(catch_up_reads) if catch_up_reads else None
        self.head = 0
        self.live: set[Subscription] = set()
        # Live subscriptions grouped by their filter (less after_seq and limit), so equal
        # filters are matched once per event, and the filters indexed by the entries of
        # their first list field, so an event is matched only against filters it may pass.
        self._groups: dict[Filter, set[Subscription]] = {}
        self._index: dict[str, dict[str, set[Filter]]] = {f: {} for f in INDEXED_FIELDS}
        self._unindexed: set[Filter] = set()
        self._advances: asyncio.Queue[tuple[int, int, Sequence[Stored] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self.listeners: list[asyncio.Queue[Sequence[Stored]]] = []  # e.g. the scores engine

    async def start(self) -> None:
        self.head = await self.store.head()
        self.metrics.head.set(self.head)
        self._task = asyncio.create_task(self._run(), name="hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -------------------------------------------------------------- advancing

    def committed(self, first: int, last: int, events: Sequence[Stored] | None = None) -> None:
        """The log now holds seqs first..last (``events`` when this process wrote them).

        This process's own commits are delivered at once when nothing is ahead
        of them, so that a client who saw the OK and then subscribes gets the
        event before LIVE.
        """
        if last <= self.head:
            return  # e.g. the NOTIFY of this process's own commit
        # Anything still queued ends before ``first`` or it would not equal head + 1,
        # and while an advance is reading from the database we must not overtake it.
        if events is not None and not self._busy and first == self.head + 1:
            self.deliver(events)
            self.metrics.head.set(self.head)
            return
        self._advances.put_nowait((first, last, events))

    async def _run(self) -> None:
        while True:
            first, last, events = await self._advances.get()
            self._busy = True
            try:
                await self._advance(first, last, events)
            except Exception:  # a failed read must not stop live delivery for good
                log.exception("hub advance failed", first=first, last=last)
                await asyncio.sleep(0.05)
                self._advances.put_nowait((first, last, None))
            finally:
                self._busy = self._advances.qsize() > 0

    async def _advance(self, first: int, last: int, events: Sequence[Stored] | None) -> None:
        if last <= self.head:
            return
        if events is None or first > self.head + 1:
            # Another process committed in between (or we were told only the range):
            # read what we have not delivered yet, in order.
            events = await self.store.range(self.head + 1, last)
        else:
            events = [s for s in events if s.seq > self.head]
        if events:
            self.deliver(events)
        self.head = max(self.head, last)
        self.metrics.head.set(self.head)

    def _candidates(self, ev: Event) -> set[Filter]:
        """Filters an event may pass: the unindexed ones and those indexed under its values."""
        index = self._index
        found = set(self._unindexed)
        for name, values in (
            ("ids", (ev.id,)),
            ("authors", (ev.author,)),
            ("kinds", (ev.kind,)),
            ("refs", ev.refs),
            ("tags", ev.tags),
        ):
            bucket = index[name]
            for v in values:
                if (hit := bucket.get(v)) is not None:
                    found |= hit
        return found

    def deliver(self, events: Sequence[Stored]) -> None:
        """Hand events (in seq order, all newer than head) to every live subscription. Never waits."""
        sent = 0
        budget = self.queue_bytes
        for stored in events:
            ev = stored.event
            seq = stored.seq
            tail = ""  # the frame after the sub_id, built once per event (wire.event = prefix + tail)
            for key in self._candidates(ev):
                if not key.matches(ev):
                    continue
                for sub in tuple(self._groups.get(key, ())):
                    if seq <= sub.cursor:
                        continue
                    sub.cursor = seq
                    if not tail:
                        tail = wire.event_tail(seq, stored.envelope_json)
                    if not sub.outbox.offer(sub.event_prefix + tail, sub, budget):
                        self.close_slow(sub)
                        continue
                    sub.sent_seq = seq
                    sent += 1
            self.head = seq
        if sent:
            self.metrics.delivered.inc(sent)
        for q in self.listeners:
            q.put_nowait(events)

    # -------------------------------------------------------------- subscriptions

    def close_slow(self, sub: Subscription) -> None:
        """Close a subscription whose queue is full (its frames already queued still go out)."""
        self.remove(sub)
        self.metrics.slow_closed.inc()
        sub.outbox.put(
            wire.closed(
                sub.sub_id,
                ProtocolError(
                    "error",
                    f"subscriber too slow: {sub.queued} bytes queued for it, {sub.outbox.bytes} for the connection; "
                    f"resubscribe with after_seq set to the last seq you received ({sub.sent_seq})",
                ),
            )
        )

    def remove(self, sub: Subscription) -> None:
        sub.closed = True
        if sub in self.live:
            self.live.discard(sub)
            self.metrics.subscriptions.dec()
            key = match_key(sub.filter)
            group = self._groups.get(key)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._groups[key]
                    self._unindex(key)

    def _go_live(self, sub: Subscription) -> None:
        self.live.add(sub)
        self.metrics.subscriptions.inc()
        key = match_key(sub.filter)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = set()
            name = index_field(key)
            if name is None:
                self._unindexed.add(key)
            else:
                for v in getattr(key, name):
                    self._index[name].setdefault(v, set()).add(key)
        group.add(sub)

    def _unindex(self, key: Filter) -> None:
        name = index_field(key)
        if name is None:
            self._unindexed.discard(key)
            return
        bucket = self._index[name]
        for v in getattr(key, name):
            keys = bucket.get(v)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del bucket[v]

    async def run_subscription(self, sub: Subscription) -> None:
        """Send stored matches, then LIVE, then keep the subscription live (returns once live).

        Without ``after_seq``: the newest ``limit`` matches. With it: every match
        after it, paged, with no cap. Either way, anything committed while we
        were reading is sent before LIVE. Reads are paged by bytes as well as
        rows, and the catch-up waits for its reader: a subscription never holds
        more than about its queue budget, however large the log. Cancelling the
        task (the subscription was replaced or closed) stops it between pages.
        """
        f = sub.filter
        if f.after_seq is None:
            target = self.head
            async with self._read_slot(sub):
                first = await self.store.nth_newest_seq(f, up_to_seq=target, n=f.effective_limit)
            await self._send_stored(sub, max(first - 1, 0), target)
        else:
            sub.cursor = f.after_seq
        while True:
            target = self.head
            if sub.cursor < target:
                await self._send_stored(sub, sub.cursor, target)
            if sub.closed or sub.outbox.closed:
                return
            if sub.cursor >= self.head:  # no await between this check and going live
                break
        sub.outbox.put(wire.live(sub.sub_id, sub.cursor))
        sub.live = True
        self._go_live(sub)

    @contextlib.asynccontextmanager
    async def _read_slot(self, sub: Subscription) -> AsyncIterator[None]:
        """Hold one of the address's catch-up reads, then one of the process's (each FIFO).

        The address's own bound comes first, so one address's waiting catch-ups never
        stand in line for the process's slots ahead of other addresses' reads.
        """
        a = sub.outbox.address
        mine = a.reads if a is not None else None
        if mine is not None:
            await mine.acquire()
        try:
            if self.read_slots is None:
                yield
            else:
                async with self.read_slots:
                    yield
        finally:
            if mine is not None:
                mine.release()

    async def _send_stored(self, sub: Subscription, after: int, target: int) -> None:
        """Send the stored matches in (after, target], pacing each frame to the reader."""
        outbox, budget = sub.outbox, self.queue_bytes
        sub.cursor = after
        rows = 16  # grows while frames are small, shrinks when they are large
        while sub.cursor < target and not sub.closed and not outbox.closed:
            async with self._read_slot(sub):
                page = await self.store.envelopes(sub.filter, after_seq=sub.cursor, up_to_seq=target, limit=rows)
            size, sent, wait_for = 0, 0, 0
            for seq, env in page:
                frame = wire.event(sub.sub_json, seq, env)
                if not outbox.fits(sub, len(frame), budget, 0.5):
                    wait_for = len(frame)
                    break
                size += len(frame)
                sent += 1
                outbox.put(frame, sub)
                sub.cursor = sub.sent_seq = seq
            if wait_for:
                # Drop the rest of the page before waiting (it is read again afterwards):
                # a catch-up waiting for its reader holds no rows, only its cursor.
                del page, frame, env
                await outbox.wait_room(sub, wait_for, budget)
                continue
            if sub.closed or outbox.closed:
                return
            if len(page) < rows:
                sub.cursor = target
            elif sent:
                rows = max(1, min(self.page, budget // 4 // max(1, size // sent)))

