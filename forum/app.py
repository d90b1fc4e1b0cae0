"""The application factory: ``create_app(settings, site=...)`` assembles routes and a
lifespan that owns the engine, the writer, the hub and the listeners. Nothing is global;
the public web is an argument (:class:`forum.site.Site`), never an import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute

from forum import api, search
from forum.db import create_engine, is_postgres, migrate
from forum.hub import Hub
from forum.ingest import Ingest
from forum.metrics import Metrics
from forum.publicurl import PublicURL
from forum.ratelimit import TokenBuckets
from forum.readbudget import ReadBudget
from forum.responses import error
from forum.scores import api as scores_api
from forum.settings import Settings
from forum.site import Site
from forum.sqlitewatch import HeadWatcher, sqlite_path
from forum.store import Store
from forum.values import api as values_api
from forum.ws import websocket_endpoint

log = structlog.get_logger("forum.app")

API_PREFIXES = ("/api/", "/.well-known/", "/healthz", "/metrics", "/openapi.json", "/ws")


def _http_error_handler(site: Site) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def http_error(request: Request, exc: Exception) -> Response:
        """The JSON error shape for the API; the public web's HTML error page elsewhere."""
        assert isinstance(exc, HTTPException)
        if site.error_page is not None and not request.url.path.startswith(API_PREFIXES):
            title = "Not found" if exc.status_code == 404 else "Request refused"
            return site.error_page(request, exc.status_code, title, "There is no page at this address.")
        reason = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "invalid")
        return error(reason, exc.detail or "request refused", status=exc.status_code)

    return http_error


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client went away mid-request: one debug line, no traceback (nobody reads the answer)."""
    log.debug("client disconnected", path=request.url.path, method=request.method)
    return Response(status_code=499)


async def _server_error(request: Request, exc: Exception) -> Response:
    return error("error", "the server failed on this request", status=500)


def create_app(settings: Settings | None = None, *, site: Site | None = None) -> Starlette:
    """The forum's app: the API, the WebSocket and ``site``'s public web (none by default).

    ``forum serve`` and ``python -m forum`` serve the full app composed by
    :data:`forum.server.APP` (the forum with the public web of ``feeds/``).
    """
    settings = settings or Settings()
    site = site or Site()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        st = app.state
        engine = create_engine(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)
        await migrate(engine)
        st.metrics = Metrics()
        st.store = Store(engine)
        st.hub = Hub(st.store, st.metrics, queue_bytes=settings.subscriber_queue_bytes, catch_up_reads=settings.max_catch_up_reads)
        await st.hub.start()
        scores = await _start_scores(app, settings)
        values = await _start_values(app, settings)
        st.ingest = Ingest(
            st.store,
            st.hub,
            st.metrics,
            limits=settings.limits,
            workers=settings.verify_workers,
            batch_max=settings.batch_max_events,
            author_buckets=TokenBuckets(settings.author_rate, settings.author_burst),
            max_pending_bytes=settings.ingest_queue_bytes,
        )
        await st.ingest.start()
        st.address_buckets = TokenBuckets(settings.address_rate, settings.address_burst)
        st.subscribe_buckets = TokenBuckets(settings.address_subscribe_rate, settings.address_subscribe_burst)
        st.connections_per_address = {}
        st.address_budgets = {}
        listener: Any = None
        if is_postgres(engine):
            from forum.pglisten import Listener

            listener = Listener(settings.resolved_database_url, st.store, st.hub)
            await listener.start()
        elif (db_file := sqlite_path(settings.resolved_database_url)) is not None:
            # Other processes on this file (FORUM_WORKERS > 1): watch the log head.
            listener = HeadWatcher(db_file, st.store, st.hub, settings.sqlite_poll_ms / 1000)
            await listener.start()
        try:
            yield
        finally:
            await _bounded("scores", scores.stop())
            await _bounded("values", values.stop())
            if listener is not None:
                await _bounded("listener", listener.stop())
            await _bounded("ingest", st.ingest.stop())
            await _bounded("hub", st.hub.stop())
            await _bounded("database", engine.dispose())

    app = Starlette(
        routes=[*api.routes, *scores_api.routes, *values_api.routes, *search.routes, WebSocketRoute("/ws", websocket_endpoint), *site.routes],
        middleware=[
            Middleware(PublicURL, public_url=settings.public_url),
            Middleware(ReadBudget, rate=settings.address_read_rate, burst=settings.address_read_burst, token_bytes=settings.rate_token_bytes),
            *site.middleware,
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error_handler(site), ClientDisconnect: _client_gone, Exception: _server_error},
    )
    app.state.settings = settings
    return app


SHUTDOWN_STEP_S = 10.0
"""How long one part may take to stop. A stop that waits on a peer that never answers
(seen once in CI: a PostgreSQL connection close that never completed) must not keep the
process from exiting; every event acknowledged is already committed, so nothing is lost."""


async def _bounded(part: str, stop: Awaitable[Any]) -> None:
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_S):
            await stop
    except TimeoutError:
        log.warning("shutdown step timed out", part=part, seconds=SHUTDOWN_STEP_S)


async def _start_scores(app: Starlette, settings: Settings) -> Any:
    """The scores engine: replays the log, then follows the hub."""
    from forum.scores.engine import ScoresEngine

    engine = ScoresEngine(app.state.store, app.state.hub, settings)
    app.state.scores = engine
    await engine.start()
    return engine


async def _start_values(app: Starlette, settings: Settings) -> Any:
    """The values engine (moral graph, cases): replays the log, then follows the hub."""
    from forum.values.engine import ValuesEngine
    from raters.arbitration import Rules

    rules = Rules().scaled(settings.arbitration_window_scale)
    engine = ValuesEngine(
        app.state.store, app.state.hub, rules, state_dir=settings.data_dir, save_interval_s=settings.state_save_interval_s
    )
    app.state.values = engine
    scores = app.state.scores  # remedies leave the score pools (docs/arbitration.md 3.5)
    engine.on_applied.append(scores.sync_remedies)
    scores.follow_remedies(engine.state.remedies)
    engine.on_state.append(lambda state: scores.follow_remedies(state.remedies))  # a loaded or replayed state
    await engine.start()
    return engine
