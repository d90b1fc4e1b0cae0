"""Reads are charged too: HTTP GETs cost the client address rate tokens by what they return.

:class:`ReadBudget` is an ASGI middleware around the whole app (API and public
web). Each ``GET``/``HEAD`` from an address takes one token from that
address's read bucket (``address_read_rate`` tokens a second, up to
``address_read_burst``) before it is served, and then one more token per
``rate_token_bytes`` of response body as the body is sent. A read is refused
only before it starts, so a response is never cut off: an expensive response
leaves the bucket in debt (at most ``-address_read_burst``) and the address's
next reads get ``429`` with ``Retry-After`` and the JSON error shape until the
bucket has refilled. A page of a few KB costs a few tokens (browsing never
meets the limit); a 1 MiB page of events costs about 260, so one address
cannot keep the server busy with cheap requests for expensive answers.

``/healthz`` and ``/metrics`` are not charged (health checks and scrapers);
publishing has its own bucket (``address_rate``). Buckets are per process.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forum.ratelimit import TokenBuckets
from forum.responses import error

FREE_PATHS = frozenset({"/healthz", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD"})


class ReadBudget:
    def __init__(self, app: ASGIApp, *, rate: float, burst: int, token_bytes: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)
        self.token_bytes = token_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.buckets.rate <= 0
            or scope["method"] not in READ_METHODS
            or scope["path"] in FREE_PATHS
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        buckets = self.buckets
        if wait := buckets.take(address, 1.0):
            refusal = error(
                "rate-limited",
                f"address over its read budget (responses cost 1 + bytes / {self.token_bytes} tokens), retry in {wait:.2f}s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
            await refusal(scope, receive, send)
            return
        unit = self.token_bytes

        async def charged(message: Message) -> None:
            if message["type"] == "http.response.body" and (body := message.get("body")):
                buckets.charge(address, len(body) / unit)
            await send(message)

        await self.app(scope, receive, charged)
