"""Live updates of the home page: a Server-Sent Events stream of *notifications*.

``GET /live?kind=&tag=&community=&after=SEQ`` sends

* ``event: post`` with ``data: SEQ`` when a matching proposal or outcome report
  was committed (several commits in a row collapse into one notification), and
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
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from forum.protocol.events import Event
from forum.store import Stored

MAX_STREAMS = 5000
PING_SECONDS = 15


class LiveListener(asyncio.Queue[Sequence[Stored]]):
    """A hub listener that coalesces instead of queueing."""

    def __init__(self, matches: Callable[[Event], bool], after: int) -> None:
        super().__init__()
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


def matcher(kinds: Sequence[str], tag: str | None, author: str | None) -> Callable[[Event], bool]:
    kind_set = frozenset(kinds)

    def matches(ev: Event) -> bool:
        if ev.kind not in kind_set:
            return False
        if tag is not None and tag not in ev.tags:
            return False
        return author is None or ev.author == author

    return matches


async def stream(request: Request, matches: Callable[[Event], bool], after: int) -> Response:
    hub = request.app.state.hub
    if sum(isinstance(q, LiveListener) for q in hub.listeners) >= MAX_STREAMS:
        return Response("too many live streams\n", status_code=503, headers={"Retry-After": "30"})
    listener = LiveListener(matches, after)

    async def events() -> AsyncIterator[dict[str, Any]]:
        hub.listeners.append(listener)
        try:
            # Anything committed between the page render and this connection:
            # one notification, the client's fragment request sorts out what is new.
            if hub.head > after:
                yield {"event": "post", "data": str(hub.head), "retry": 3000}
            while True:
                await listener.wake.wait()
                listener.wake.clear()
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
