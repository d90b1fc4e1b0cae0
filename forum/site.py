"""What a public web brings to the forum's app: its routes, its middleware and its error page.

The forum core knows nothing of any particular web (``forum`` never imports
``feeds``); :func:`forum.app.create_app` takes one as an argument and the full
app is composed outside the core (:data:`forum.server.APP` names the factory
that ``forum serve`` and ``python -m forum`` run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

ErrorPage = Callable[[Request, int, str, str], Response]
"""``error_page(request, status, title, message)``: the HTML answer to a refused page request."""


@dataclass(frozen=True)
class Site:
    """A public web mounted beside the API (routes after the API's, middleware around all)."""

    routes: Sequence[BaseRoute] = ()
    middleware: Sequence[Middleware] = ()
    error_page: ErrorPage | None = None
