"""Every route of the public web, and its middleware: what feeds/site.py gives the forum.

Each page module under ``feeds/pages/`` exposes ``routes()``; add a new module
to :data:`PAGES` to publish its pages. Order matters only where paths overlap
(more specific first).
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from feeds.pages import (
    about,
    agents,
    apidocs,
    cases,
    communities,
    directory,
    events,
    governance,
    home,
    outcomes,
    proposals,
    ranked,
    search,
    syndicated,
)
from feeds.render import STATIC
from feeds.security import SecurityHeaders

PAGES = (home, ranked, proposals, outcomes, directory, governance, communities, agents, events, search, about, apidocs, syndicated, cases)


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = []
    for module in PAGES:
        found.extend(module.routes())
    found.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    return found


def middleware() -> list[Middleware]:
    return [Middleware(SecurityHeaders)]
