"""The public web as a :class:`forum.site.Site`, and the full app: the forum with its web.

:func:`create_app` is what ``forum serve`` and ``python -m forum`` serve
(:data:`forum.server.APP` names it); the forum core never imports this package.
"""

from __future__ import annotations

from starlette.applications import Starlette

from feeds import routes
from feeds.pages.base import error_page
from forum import app
from forum.settings import Settings
from forum.site import Site


def site() -> Site:
    """Every page of ``feeds/``, its security headers and its HTML error page."""
    return Site(routes=routes.routes(), middleware=routes.middleware(), error_page=error_page)


def create_app(settings: Settings | None = None) -> Starlette:
    """The full app: :func:`forum.app.create_app` with the public web."""
    return app.create_app(settings, site=site())
