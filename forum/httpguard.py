"""Limits on HTTP connections before any request reaches the app (slowloris, floods).

uvicorn's h11 protocol, per connection, plus:

* at most ``max_http_connections_per_address`` open connections per client
  address; the next one gets ``503`` with ``Retry-After`` and is closed;
* the request line and headers must arrive within ``http_header_timeout_s`` of
  the first byte (of each request on a kept-alive connection), or the
  connection gets ``408`` and is closed. Idle kept-alive connections close
  after uvicorn's ``timeout_keep_alive``; request bodies have their own timeout
  where they are read (forum/api.py); headers are at most uvicorn's
  ``h11_max_incomplete_event_size``.

* at most ``address_upgrade_rate`` WebSocket handshakes a second per client
  address (after a burst of ``address_upgrade_burst``); the next upgrade
  request gets ``429`` with ``Retry-After`` and is closed before any
  WebSocket state is built (a thousand handshakes at once cost the event
  loop a quarter of its time).

A connection upgraded to a WebSocket leaves this count (``/ws`` has its own
per-address cap). The table of counts lives on uvicorn's server state, so
nothing is shared between two servers in one process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import orjson
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from forum.ratelimit import TokenBuckets

log = structlog.get_logger("forum.httpguard")


TOO_MANY_MESSAGE = "too many HTTP connections from this address"
UPGRADES_MESSAGE = "too many WebSocket handshakes from this address"


def _response(status: int, phrase: str, reason: str, message: str, extra: str = "") -> bytes:
    body = orjson.dumps({"ok": False, "status": status, "reason": reason, "message": f"{reason}: {message}"})
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


TOO_MANY = _response(503, "Service Unavailable", "blocked", TOO_MANY_MESSAGE, "retry-after: 5\r\n")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a per-address connection cap and a header timeout.

    Its limits come from ``config.forum_guard`` = (max per address, header
    timeout in seconds, upgrade rate, upgrade burst), set by
    :func:`forum.server.run` on the uvicorn Config (picklable, so worker
    processes get them too); the table of counts and the upgrade buckets live
    on uvicorn's per-server state.
    """

    _address: str | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        guard: tuple[int, float, float, int] = getattr(config, "forum_guard", (0, 0.0, 0.0, 1))
        self.max_per_address, self.header_timeout_s, upgrade_rate, upgrade_burst = guard
        counts = getattr(server_state, "forum_counts", None)
        if counts is None:
            counts = server_state.forum_counts = {}
            server_state.forum_upgrades = TokenBuckets(upgrade_rate, upgrade_burst)
        self.counts: dict[str, int] = counts
        self.upgrades: TokenBuckets = server_state.forum_upgrades

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else "unknown"
        n = self.counts.get(address, 0)
        if self.max_per_address and n >= self.max_per_address:
            log.debug("http connection refused: too many from this address", address=address)
            transport.write(TOO_MANY)
            transport.close()
            return
        self.counts[address] = n + 1
        self._address = address
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None and self.header_timeout_s:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _release(self) -> None:
        self._disarm()
        address, self._address = self._address, None
        if address is not None:
            self.counts[address] -= 1
            if not self.counts[address]:
                del self.counts[address]

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("http connection closed: headers too slow", address=self._address)
            self.transport.write(_response(408, "Request Timeout", "blocked", f"request headers not received within {self.header_timeout_s:g}s"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._address is None:
            return
        if self.conn.their_state is h11.IDLE:
            self._arm()  # part of a request line or headers: they have this long to finish
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle now: uvicorn's keep-alive timeout applies until the next byte

    def handle_websocket_upgrade(self, event: Any) -> None:
        address = self._address
        self._release()
        if address is not None and (wait := self.upgrades.take(address)):
            log.debug("websocket handshake refused: too many from this address", address=address)
            retry = max(1, round(wait))
            self.transport.write(
                _response(429, "Too Many Requests", "rate-limited", f"{UPGRADES_MESSAGE}, retry in {wait:.2f}s", f"retry-after: {retry}\r\n")
            )
            self.transport.close()
            return
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)
