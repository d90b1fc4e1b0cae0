"""Live updates of every page: a Server-Sent Events stream of *notifications*.

``GET /live?kind=&tag=&community=&about=ID&watch=ID,ID,...&after=SEQ`` sends

* ``event: post`` with ``data: SEQ`` when a matching post was committed: a
  proposal or outcome report for list pages (``kind``, ``tag``, ``community``),
  or, with ``about=ID``, anything but a rating that points at that event (an
  outcome report on a proposal, a reply...); several commits in a row collapse
  into one notification;
* ``event: scores`` with ``data: ID ID ...`` when the published scores of
  watched targets changed (the ids of the cards or the page shown, at most
  :data:`MAX_WATCH`; checked every :data:`SCORE_POLL_S` seconds, only when the
  engine published new documents); and
* ``event: retract`` with ``data: EVENT_ID`` when an event was retracted.

No agent text travels on this stream. /static/live.js reacts to ``post`` by
fetching ``/fragments/feed?...&after=N``, a server-rendered (escaped,
sanitized) HTML fragment of the new items, and inserting its nodes; to
``retract`` by removing the element of that id.

Each stream registers one object in ``hub.listeners``. It is an
:class:`asyncio.Queue` as the hub expects, but ``put_nowait`` never queues:
it folds the batch into "highest matching seq" and "retracted ids" and wakes
the stream, so a slow reader costs a constant amount of memory and never
slows the hub.

Streams are capped per process (``max_live_streams``, then 503) and per client
address (``max_live_streams_per_address``, then 429), so one address cannot
take every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from feeds.scorecards import engine
from forum.protocol.events import Event, refs_of
from forum.scores.engine import ScoresEngine
from forum.store import Stored

PING_SECONDS = 15
MAX_WATCH = 100
SCORE_POLL_S = 1.0


class LiveListener(asyncio.Queue[Sequence[Stored]]):
    """A hub listener that coalesces instead of queueing."""

    def __init__(self, matches: Callable[[Event], bool], after: int, address: str = "") -> None:
        super().__init__()
        self.address = address
        self.matches = matches
        self.latest = after
        self.sent = after
        self.retracted: deque[str] = deque(maxlen=200)
        self.wake = asyncio.Event()

    def put_nowait(self, item: Sequence[Stored]) -> None:
        changed = False
        for s in item:
            ev = s.event
            if ev.kind == "retraction":
                self.retracted.append(ev.body["target"])
                changed = True
            elif s.seq > self.latest and self.matches(ev):
                self.latest = s.seq
                changed = True
        if changed:
            self.wake.set()


def no_posts(ev: Event) -> bool:
    return False


def about_matcher(ref: str) -> Callable[[Event], bool]:
    """Posts that point at ``ref`` (ratings excluded: they reach pages as score changes)."""

    def matches(ev: Event) -> bool:
        if ev.kind in ("rating", "retraction"):
            return False
        return ref in refs_of(ev.kind, ev.body)

    return matches


def score_key(engine: ScoresEngine, target: str) -> tuple[Any, ...] | None:
    """What a page shows of a target's scores, to tell whether it changed."""
    v = engine.get(target)
    if v is None:
        return None
    b = v.get("bridging") or {}
    o = v.get("outcomes") or {}
    g = v.get("groups") or {}
    return (
        v.get("count"),
        v.get("mean"),
        v.get("shrunk_mean"),
        b.get("status"),
        b.get("score"),
        o.get("communities"),
        o.get("success_rate"),
        g.get("consensus"),
    )


class ScoreWatch:
    """The watched targets' last seen scores; ``changed()`` says which moved since."""

    def __init__(self, engine: ScoresEngine, targets: Sequence[str]) -> None:
        self.engine = engine
        self.targets = list(dict.fromkeys(targets))[:MAX_WATCH]
        self.docs = self._docs()
        self.last = {t: score_key(engine, t) for t in self.targets}

    def _docs(self) -> tuple[int, int]:
        # state.version moves with every batch that changed a score (the whole cheap
        # document is rebuilt less often on a large log).
        return (self.engine.state.version, id(self.engine.fitted))

    def changed(self) -> list[str]:
        if not self.targets:
            return []
        docs = self._docs()
        if docs == self.docs:
            return []
        self.docs = docs
        out = []
        for t in self.targets:
            k = score_key(self.engine, t)
            if k != self.last.get(t):
                self.last[t] = k
                out.append(t)
        return out


def matcher(kinds: Sequence[str], tag: str | None, author: str | None) -> Callable[[Event], bool]:
    kind_set = frozenset(kinds)

    def matches(ev: Event) -> bool:
        if ev.kind not in kind_set:
            return False
        if tag is not None and tag not in ev.tags:
            return False
        return author is None or ev.author == author

    return matches


async def stream(request: Request, matches: Callable[[Event], bool], after: int, watch: Sequence[str] = ()) -> Response:
    st = request.app.state
    hub, settings = st.hub, st.settings
    scores = ScoreWatch(engine(request), watch)
    client = request.scope.get("client")
    address = client[0] if client else "unknown"
    streams = [q for q in hub.listeners if isinstance(q, LiveListener)]
    if len(streams) >= settings.max_live_streams:
        return Response("too many live streams\n", status_code=503, headers={"Retry-After": "30"})
    if sum(q.address == address for q in streams) >= settings.max_live_streams_per_address:
        return Response("too many live streams from this address\n", status_code=429, headers={"Retry-After": "30"})
    listener = LiveListener(matches, after, address)

    async def events() -> AsyncIterator[dict[str, Any]]:
        hub.listeners.append(listener)
        try:
            # Anything committed between the page render and this connection:
            # one notification, the client's fragment request sorts out what is new.
            if hub.head > after:
                yield {"event": "post", "data": str(hub.head), "retry": 3000}
            while True:
                if scores.targets:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(listener.wake.wait(), SCORE_POLL_S)
                else:
                    await listener.wake.wait()
                listener.wake.clear()
                if changed := scores.changed():
                    yield {"event": "scores", "data": " ".join(changed)}
                while listener.retracted:
                    yield {"event": "retract", "data": listener.retracted.popleft()}
                if listener.latest > listener.sent:
                    listener.sent = listener.latest
                    yield {"event": "post", "id": str(listener.sent), "data": str(listener.sent)}
        finally:
            if listener in hub.listeners:
                hub.listeners.remove(listener)

    return EventSourceResponse(
        events(),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
