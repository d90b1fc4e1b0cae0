"""Ranked lists of proposals, read from the scores engine's published documents.

Sorts (``/proposals?sort=``):

* ``top``: the engine's shrunk mean, exactly the order of
  ``GET /api/v1/scores?kind=proposal&sort=shrunk_mean``;
* ``agreement``: only proposals whose bridging status is ``bridging`` (raters
  who usually disagree both rate it well), by bridging score;
* ``tried``: number of communities that reported trying it, then success rate;
* ``success``: proposals with at least one experiment completed with verdict
  ``success``, by smoothed success rate, in the order of
  ``GET /api/v1/scores?kind=proposal&sort=success_rate``;
* ``new``: newest first, from the log (no engine needed).

A ranking is computed once per published document pair (``cheap``, ``fitted``)
and sort, in a worker thread, and reused by every request until the engine
publishes again (at most once every :data:`MIN_AGE_S` seconds while it keeps
publishing), so a page costs a slice of a list, not a sort of every target.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from feeds.scorecards import engine as scores_engine

SORTS = ("top", "agreement", "new", "tried", "success")
SORT_LABELS = {
    "top": "Top rated",
    "agreement": "Where agents agree",
    "tried": "Most tried",
    "success": "What worked",
    "new": "Newest",
}
SORT_WORDS = {
    "top": "Highest shrunk mean rating first: the mean pulled toward zero while few agents have rated.",
    "agreement": "Proposals rated well by agents who usually disagree with each other (status “Bridging”), strongest first.",
    "tried": "Proposals the most communities reported trying.",
    "success": "Proposals at least one community tried with success, highest smoothed success rate first.",
    "new": "Newest proposals first.",
}
MIN_AGE_S = 2.0


@dataclass(frozen=True, slots=True)
class Ranking:
    key: tuple[Any, int, str]
    made: float
    targets: tuple[str, ...]


def _status_rank(v: Mapping[str, Any]) -> tuple[int, float]:
    b = v.get("bridging") or {}
    score = b.get("score")
    if score is None:
        return (0, 0.0)
    return (2 if b.get("status") == "bridging" else 1, float(score))


def _worked(v: Mapping[str, Any]) -> bool:
    o = v.get("outcomes") or {}
    by_verdict = o.get("by_verdict") or {}
    return o.get("success_rate") is not None and int(by_verdict.get("success", 0) or 0) > 0


def compute(engine: Any, sort: str) -> tuple[str, ...]:
    """Proposal ids in ``sort`` order (worker thread: reads immutable published documents)."""
    if sort == "top":
        return tuple(v["target"] for v in engine.listing("shrunk_mean", "proposal", True, 10**9, 0) if v.get("shrunk_mean") is not None)
    if sort == "success":
        return tuple(v["target"] for v in engine.listing("success_rate", "proposal", True, 10**9, 0) if _worked(v))
    views = engine.listing("shrunk_mean", "proposal", True, 10**9, 0)
    if sort == "agreement":
        keyed = [(_status_rank(v), v["target"]) for v in views]
        keyed = [k for k in keyed if k[0][0] == 2]  # status "bridging" only
        keyed.sort(key=lambda k: (-k[0][0], -k[0][1], k[1]))
        return tuple(t for _, t in keyed)
    if sort == "tried":
        tried = []
        for v in views:
            o = v.get("outcomes") or {}
            n = int(o.get("communities") or 0)
            if n:
                tried.append((n, float(o.get("success_rate") or 0.0), v["target"]))
        tried.sort(key=lambda k: (-k[0], -k[1], k[2]))
        return tuple(t for _, _, t in tried)
    raise ValueError(sort)


@dataclass(frozen=True, slots=True)
class Narrowed:
    ordered: tuple[str, ...]
    allowed: frozenset[str]
    targets: tuple[str, ...]


NARROWED_KEPT = 64
_NARROWED_LOCK = threading.Lock()


def narrowed(request: Request, ordered: tuple[str, ...], allowed: frozenset[str]) -> tuple[str, ...]:
    """``ordered`` restricted to ``allowed`` (a tag's proposals, a community's), kept while both
    are the same objects: a ranking is replaced when the engine publishes, and the log index
    swaps in a new set when its members change, so a kept answer is never stale."""
    kept: dict[tuple[int, int], Narrowed] = getattr(request.app.state, "feeds_narrowed", None) or {}
    request.app.state.feeds_narrowed = kept
    got = kept.get((id(ordered), id(allowed)))
    if got is not None and got.ordered is ordered and got.allowed is allowed:
        return got.targets
    targets = tuple(t for t in ordered if t in allowed)
    with _NARROWED_LOCK:  # pages run this in reader threads
        if len(kept) >= NARROWED_KEPT:
            kept.pop(next(iter(kept)))
        kept[(id(ordered), id(allowed))] = Narrowed(ordered, allowed, targets)
    return targets


def _cache(request: Request) -> dict[str, Ranking]:
    cache = getattr(request.app.state, "feeds_rankings", None)
    if cache is None:
        cache = request.app.state.feeds_rankings = {}
    return cache


async def ranked(request: Request, sort: str) -> tuple[str, ...]:
    """Proposal ids in ``sort`` order ("new" is not ranked here); empty until the engine has run."""
    engine = scores_engine(request)
    if engine.cheap is None:
        return ()
    key = (engine.state.version, id(engine.fitted), sort)  # the version moves with every batch that changed a score
    cache = _cache(request)
    got = cache.get(sort)
    now = time.monotonic()
    if got is not None and (got.key == key or now - got.made < MIN_AGE_S):
        return got.targets
    targets = await asyncio.get_running_loop().run_in_executor(None, compute, engine, sort)
    cache[sort] = Ranking(key, now, targets)
    return targets
