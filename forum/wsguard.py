"""A CPU budget per WebSocket connection: frames and bytes read, then back-pressure.

uvicorn's WebSocket protocol parses every frame of a socket read at once (up
to 256 KiB: about 37,000 one-byte frames) before anything else on the event
loop runs. :class:`GuardedWebSocketProtocol` (uvicorn's ``ws`` protocol of
``forum serve``) instead:

* hands the parser at most ``SLICE`` bytes per event-loop pass, and parses
  no further while the app has not taken the frames already parsed (the
  reader of forum/ws.py waits for its own reasons: replies piling up, the
  outbox full, publishes unanswered);
* charges each connection's budgets: ``connection_frame_rate`` frames a
  second (up to ``connection_frame_burst``) and ``connection_byte_rate``
  bytes a second (up to ``connection_byte_burst``). A connection past either
  one is not read from until its budget has refilled: its frames wait in the
  kernel, its client's sends block (TCP back-pressure). Nothing is refused
  and nothing is lost; the connection is simply read at its budget's pace.

Its limits come from ``config.forum_ws_budget`` = (frame rate, frame burst,
byte rate, byte burst), set by :func:`forum.server.run`; a rate of 0 turns
that budget off.
"""

from __future__ import annotations

import asyncio
from typing import Any

from forum.corked import CorkedTransport, CorkedWebSocketProtocol

SLICE = 8192  # bytes handed to the frame parser per event-loop pass


class _Budget:
    """One connection's token bucket; it may go into debt (the work was already done)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def charge(self, n: float, now: float) -> None:
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate) - n
            self.last = now

    def wait(self, now: float) -> float:
        """Seconds until the bucket is out of debt (0 when it is not in debt)."""
        if self.rate <= 0:
            return 0.0
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        return 0.0 if tokens >= 0 else -tokens / self.rate


class GatedTransport(CorkedTransport):
    """A corked transport whose reading is paused while any holder holds it.

    Holders: ``app`` (uvicorn: frames are waiting for the app), ``backlog`` (a
    read not parsed yet) and ``budget`` (the connection is over its budget).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, on_app_resume: Any) -> None:
        super().__init__(transport, loop)
        self.held: set[str] = set()
        self._on_app_resume = on_app_resume

    def hold(self, why: str) -> None:
        if not self.held:
            self._transport.pause_reading()
        self.held.add(why)

    def release(self, why: str) -> None:
        if why in self.held:
            self.held.discard(why)
            if not self.held:
                self._transport.resume_reading()

    def pause_reading(self) -> None:
        self.hold("app")

    def resume_reading(self) -> None:
        self.release("app")
        self._on_app_resume()


class GuardedWebSocketProtocol(CorkedWebSocketProtocol):
    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        frame_rate, frame_burst, byte_rate, byte_burst = getattr(config, "forum_ws_budget", (0, 0, 0, 0))
        now = self.loop.time()
        self._frame_budget = _Budget(frame_rate, frame_burst, now)
        self._byte_budget = _Budget(byte_rate, byte_burst, now)
        self._backlog: bytes | None = None
        self._offset = 0
        self._feeding: asyncio.Handle | None = None
        self._budget_timer: asyncio.TimerHandle | None = None

    def wrap_transport(self, transport: asyncio.Transport) -> CorkedTransport:
        return GatedTransport(transport, self.loop, self._app_resumed)

    @property
    def _gate(self) -> GatedTransport:
        gate = self.transport
        assert isinstance(gate, GatedTransport)
        return gate

    def data_received(self, data: bytes) -> None:
        if self._backlog is None:
            self._backlog, self._offset = data, 0
        else:  # not expected (reading is paused while there is a backlog), but never lose bytes
            self._backlog = self._backlog[self._offset :] + data
            self._offset = 0
        if self._feeding is None:
            self._feed()

    def _feed(self) -> None:
        self._feeding = None
        gate = self._gate
        while self._backlog is not None:
            if gate.held - {"backlog"}:  # the app has frames to take, or the budget is spent
                gate.hold("backlog")
                return  # fed again by _app_resumed or _budget_refilled
            piece = self._backlog[self._offset : self._offset + SLICE]
            self._offset += len(piece)
            if self._offset >= len(self._backlog):
                self._backlog = None
            self._byte_budget.charge(len(piece), self.loop.time())
            super().data_received(piece)
            if self.transport.is_closing():
                self._backlog = None
                break
            self._check_budget()
            if self._backlog is not None:  # the rest on a later pass: everyone else runs first
                gate.hold("backlog")
                self._feeding = self.loop.call_soon(self._feed)
                return
        gate.release("backlog")

    def _app_resumed(self) -> None:
        if self._backlog is not None and self._feeding is None:
            self._feeding = self.loop.call_soon(self._feed)

    def send_receive_event_to_app(self) -> None:
        self._frame_budget.charge(1, self.loop.time())
        super().send_receive_event_to_app()

    def handle_ping(self) -> None:
        self._frame_budget.charge(1, self.loop.time())
        super().handle_ping()

    def _check_budget(self) -> None:
        if self._budget_timer is not None:
            return
        now = self.loop.time()
        wait = max(self._frame_budget.wait(now), self._byte_budget.wait(now))
        if wait > 0:
            self._gate.hold("budget")
            self._budget_timer = self.loop.call_later(wait, self._budget_refilled)

    def _budget_refilled(self) -> None:
        self._budget_timer = None
        self._check_budget()
        if self._budget_timer is None:
            self._gate.release("budget")
            self._app_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._feeding, self._budget_timer):
            if handle is not None:
                handle.cancel()
        self._feeding = self._budget_timer = None
        self._backlog = None
        super().connection_lost(exc)
