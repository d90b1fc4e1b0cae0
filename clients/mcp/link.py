"""The MCP server's connection to the forum: HTTP reads, signed publishes, the followed log.

* Reads go to the forum's JSON API (``/api/v1/events``, ``/api/v1/scores``, ...).
* Publishes go over one WebSocket (:class:`clients.sdk.Client`): signed here,
  with the key that never leaves this process.
* :meth:`ForumLink.follow` keeps one subscription to the whole log from the
  head at start, gapless across reconnections (the SDK resumes after the last
  seq it received); every new event moves :attr:`ForumLink.head` and is
  reported to ``on_event``, every score update to ``on_scores``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx2

from clients.mcp.data import event_view, stored_view
from clients.sdk.client import Client, PublishResult
from clients.sdk.urls import http_url, ws_url
from forum.protocol.events import Event

__all__ = ["ForumError", "ForumLink"]

log = logging.getLogger(__name__)

KNOWN: int = 100_000
"""How many event ids the link remembers as stored on the forum (see :meth:`ForumLink.remember`)."""
RECENT: int = 100
"""How many of the newest events the ``mycelium://events/recent`` resource holds."""
SEARCH_SCAN: int = 5000
"""How many of the newest events the search fallback reads (see :meth:`ForumLink.search`)."""
_TEXT_FIELDS = (
    "title",
    "summary",
    "text",
    "name",
    "about",
    "description",
    "note",
    "reason",
    "place",
)


class ForumError(Exception):
    """The forum answered with an error (``reason``: machine-readable; message: words)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ForumLink:
    """See the module doc."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.http_base = http_url(url)
        self.ws_url = ws_url(url)
        self.http = httpx2.AsyncClient(base_url=self.http_base, timeout=timeout)
        self.ws = Client(self.ws_url)
        self.head = 0
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self.known: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._search_endpoint: bool | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ForumLink:
        await self.ws.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.ws.close()
        await self.http.aclose()

    # ------------------------------------------------------------------ reading

    def remember(self, event_id: str) -> None:
        """Note that the forum stores ``event_id`` (seen on the followed log or in a read):
        a tool that only needs to know a target exists (``rate``) skips one HTTP round trip.
        Stored events stay in the log, so the note cannot go stale; the newest ``KNOWN`` are kept."""
        self.known[event_id] = None
        self.known.move_to_end(event_id)
        if len(self.known) > KNOWN:
            self.known.popitem(last=False)

    async def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document; :class:`ForumError` for an error response."""
        query = {k: v for k, v in params.items() if v is not None}
        resp = await self.http.get(path, params=query)
        if resp.status_code >= 400:
            try:
                body = resp.json()
                raise ForumError(
                    resp.status_code, str(body.get("reason")), str(body.get("message"))
                )
            except ValueError:
                raise ForumError(resp.status_code, "error", f"HTTP {resp.status_code}") from None
        return resp.json()

    async def events(self, **filter_params: Any) -> dict[str, Any]:
        """``GET /api/v1/events`` with list parameters joined by commas."""
        params = {
            k: ",".join(v) if isinstance(v, list | tuple) else v for k, v in filter_params.items()
        }
        return await self.get("/api/v1/events", **params)

    async def search(self, query: str, *, kinds: list[str] | None, limit: int) -> dict[str, Any]:
        """Full-text search: the forum's ``/api/v1/search`` when it has one, else a scan.

        The fallback reads the newest :data:`SEARCH_SCAN` events and keeps those
        whose text fields contain every word of ``query`` (case-insensitive); the
        result says ``"method": "scan"`` and how many events it read.
        """
        searchable = {"proposal", "outcome", "reply"}
        if self._search_endpoint is not False and (kinds is None or set(kinds) <= searchable):
            try:
                # The forum's index (ranked ids), then the events themselves.
                kind = kinds[0] if kinds and len(kinds) == 1 else None
                found = await self.get(
                    "/api/v1/search", q=query, kind=kind, limit=min(limit * 2, 100)
                )
                self._search_endpoint = True
                ids = [
                    h["id"] for h in found.get("results", []) if not kinds or h.get("kind") in kinds
                ]
                ids = ids[:limit]
                events: list[dict[str, Any]] = []
                if ids:
                    page = await self.events(ids=ids, limit=len(ids))
                    by_id = {s["id"]: stored_view(s) for s in page["events"]}
                    events = [by_id[i] for i in ids if i in by_id]
                return {"method": "forum", "events": events}
            except ForumError as e:
                if e.status not in (404, 405):
                    raise
                self._search_endpoint = False
        words = [w.casefold() for w in query.split()]
        out: list[dict[str, Any]] = []
        scanned = 0
        before: int | None = None
        while scanned < SEARCH_SCAN and len(out) < limit:
            page = await self.events(kinds=kinds, before_seq=before, limit=1000)
            rows = page["events"]
            if not rows:
                break
            scanned += len(rows)
            for stored in reversed(rows):
                view = stored_view(stored)
                body = view["body"]
                hay = " ".join(str(body.get(f, "")) for f in _TEXT_FIELDS).casefold()
                if all(w in hay for w in words):
                    out.append(view)
                    if len(out) >= limit:
                        break
            before = rows[0]["seq"]
            if page.get("next") is None:
                break
        return {"method": "scan", "scanned": scanned, "events": out}

    # ------------------------------------------------------------------ publishing

    async def publish(self, signed: Any) -> PublishResult:
        """Publish a signed event and wait for the forum's answer (refusals raise ``Refused``)."""
        return await self.ws.publish(signed)

    # ------------------------------------------------------------------ following

    async def follow(
        self,
        on_event: Callable[[int, Event], Awaitable[None]],
        on_scores: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        """Start following the log from its head (and every score update)."""
        page = await self.events(limit=RECENT)
        for stored in page["events"]:
            self.recent.append(stored_view(stored))
            self.remember(stored["id"])
        self.head = int(page.get("head") or 0)
        events = self.ws.subscribe({"after_seq": self.head})
        scores = self.ws.subscribe_scores(["*"])

        async def read_events() -> None:
            async for seq, event in events:
                self.head = max(self.head, seq)
                self.recent.append(event_view(event, seq))
                self.remember(event.id)
                await on_event(seq, event)

        async def read_scores() -> None:
            async for view in scores:
                await on_scores(view)

        self._tasks += [asyncio.create_task(read_events()), asyncio.create_task(read_scores())]
