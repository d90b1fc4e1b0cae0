"""Scores as the pages show them, from the forum's scores engine.

The engine (``request.app.state.scores``, :class:`forum.scores.engine.ScoresEngine`,
always started by the app) answers ``get(target_id) -> dict | None`` with the
full picture (forum/scores/documents.py ``target_view``): count, mean, shrunk
mean, per-criterion means, the bridging fit, opinion groups, a histogram and,
for proposals, the outcome summary. Pages read it only through this module.

When the engine has nothing yet for a target (it computes a moment after each
commit), the cheap parts come straight from the ``ratings`` table (count, mean,
histogram, per-criterion means) and the outcome summary from the reports on the
page, summarized by :func:`raters.outcomes.summarize_outcomes` as the engine
does; bridging status and opinion groups are then shown as "not computed yet".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Connection
from starlette.requests import Request

from feeds import queries
from feeds.reader import reader
from forum.scores.engine import ScoresEngine
from forum.store import Stored
from raters.bridging import (
    MIN_RATERS,  # below this support the status is "insufficient"
    STATUS_SENTENCES,
    STATUSES,
)
from raters.outcomes import summarize_outcomes

BRIDGING_STATUSES = STATUSES
STATUS_WORDS = {**STATUS_SENTENCES, "pending": "The scoring engine has not rated this yet."}
"""One true sentence per status (the same as raters.bridging.STATUS_SENTENCES)."""


@dataclass(frozen=True, slots=True)
class CriterionScore:
    key: str
    count: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class Bridging:
    status: str  # one of raters.bridging.STATUSES, or "pending"
    score: float | None = None
    factor: float | None = None

    @property
    def words(self) -> str:
        return STATUS_WORDS.get(self.status, STATUS_WORDS["pending"])


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    mean: float | None
    votes: int | None


def _group_name(key: str) -> str:
    """Group 0, 1, ... are shown as A, B, ..."""
    return chr(ord("A") + int(key)) if key.isdigit() and int(key) < 26 else key


@dataclass(frozen=True, slots=True)
class MetricSummary:
    name: str
    units: tuple[str, ...]
    reports: int
    mean: float | None
    low: float | None
    high: float | None
    i2: float | None = None
    range_low: float | None = None
    range_high: float | None = None
    not_pooled: int = 0


@dataclass(frozen=True, slots=True)
class OutcomeSummary:
    communities: int
    by_status: tuple[tuple[str, int], ...]
    by_verdict: tuple[tuple[str, int], ...]
    success_rate: float | None
    metrics: tuple[MetricSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class Scores:
    count: int = 0
    mean: float | None = None
    shrunk_mean: float | None = None
    criteria: tuple[CriterionScore, ...] = ()
    bridging: Bridging = field(default_factory=lambda: Bridging("pending"))
    groups: tuple[Group, ...] = ()
    consensus: float | None = None
    histogram: tuple[int, ...] = ()
    outcomes: OutcomeSummary | None = None
    history: tuple[tuple[int, int, float | None], ...] = ()  # (seq, count, mean) over log time
    as_of_seq: int | None = None
    algorithm: str | None = None
    version: str | None = None
    source: str = "ratings"  # "engine" or "ratings" (computed here from the ratings table)
    communities: int | None = None  # communities that reported outcomes (proposals)
    success_rate: float | None = None  # smoothed success rate of completed experiments (proposals)

    @property
    def computed(self) -> bool:
        return self.source == "engine"


# --------------------------------------------------------------------------- engine


def engine(request: Request) -> ScoresEngine:
    eng: ScoresEngine = request.app.state.scores  # the app's lifespan always starts one
    return eng


def _f(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _i(x: Any, default: int = 0) -> int:
    if isinstance(x, bool):
        return default
    if isinstance(x, int):
        return x
    if isinstance(x, float) and math.isfinite(x):
        return int(x)
    return default


def _pairs(x: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(x, Mapping):
        items = list(x.items())
    elif isinstance(x, list | tuple):
        items = [tuple(p) for p in x if isinstance(p, list | tuple) and len(p) == 2]
    else:
        return ()
    return tuple(sorted((str(k), _i(v)) for k, v in items))


def _outcomes(x: Any) -> OutcomeSummary | None:
    if not isinstance(x, Mapping):
        return None
    metrics = []
    for m in x.get("metrics") or ():
        if isinstance(m, Mapping) and isinstance(m.get("name"), str):
            units = m.get("units") or ()
            metrics.append(
                MetricSummary(
                    name=m["name"],
                    units=tuple(str(u) for u in units) if isinstance(units, list | tuple) else (),
                    reports=_i(m.get("reports")),
                    mean=_f(m.get("mean")),
                    low=_f(m.get("low")),
                    high=_f(m.get("high")),
                    i2=_f(m.get("i2")),
                    range_low=_f(m.get("range_low")),
                    range_high=_f(m.get("range_high")),
                    not_pooled=_i(m.get("not_pooled")),
                )
            )
    return OutcomeSummary(
        communities=_i(x.get("communities")),
        by_status=_pairs(x.get("by_status")),
        by_verdict=_pairs(x.get("by_verdict")),
        success_rate=_f(x.get("success_rate")),
        metrics=tuple(metrics),
    )


def from_engine(d: Mapping[str, Any]) -> Scores:
    """Normalize whatever the engine returned; unknown or malformed fields are dropped."""
    crit = []
    raw = d.get("criteria")
    if isinstance(raw, Mapping):
        for k, v in raw.items():
            if isinstance(v, Mapping):
                crit.append(CriterionScore(str(k), _i(v.get("count")), _f(v.get("mean"))))
    b = d.get("bridging")
    if isinstance(b, Mapping):
        status = str(b["status"]) if b.get("status") in BRIDGING_STATUSES else "pending"
        bridging = Bridging(status, _f(b.get("score")), _f(b.get("factor")))
    else:
        bridging = Bridging("pending")
    groups: list[Group] = []
    consensus = None
    g = d.get("groups")
    if isinstance(g, Mapping):
        # {"means": {id: mean}, "votes": {id: n}, "consensus": x, ...} (forum/scores/documents.py)
        votes = g["votes"]
        consensus = _f(g["consensus"])
        for k, v in g["means"].items():
            groups.append(Group(_group_name(str(k)), _f(v), _i(votes[k]) if k in votes else None))
    hist = d.get("histogram")
    outcomes = _outcomes(d.get("outcomes"))
    return Scores(
        count=_i(d.get("count")),
        mean=_f(d.get("mean")),
        shrunk_mean=_f(d.get("shrunk_mean")),
        criteria=tuple(sorted(crit, key=lambda c: (-c.count, c.key))),
        bridging=bridging,
        groups=tuple(groups),
        consensus=consensus,
        histogram=tuple(_i(n) for n in hist) if isinstance(hist, list | tuple) else (),
        outcomes=outcomes,
        as_of_seq=_i(d.get("as_of_seq"), 0) or None,
        algorithm=d.get("algorithm") if isinstance(d.get("algorithm"), str) else None,
        version=str(d.get("version")) if d.get("version") is not None else None,
        source="engine",
        communities=outcomes.communities if outcomes else 0,
        success_rate=outcomes.success_rate if outcomes else None,
    )


def engine_badge(eng: ScoresEngine, target: str) -> dict[str, Any] | None:
    """The part of ``eng.get(target)`` a list badge reads (count, means, bridging status, outcome
    summary), read without building the rest of the view: a list shows 25 to 35 targets."""
    if not eng.ready.is_set():
        return None
    s = eng.state.targets.get(target)
    if s is None and target not in eng.state.outcomes:
        return None
    fitted, fi = eng.fitted, eng.index.get("fitted", {}).get(target)
    res = fitted.get("result") if fitted is not None else None
    return {
        "count": s.count if s else 0,
        "mean": s.total / s.count if s else None,
        "shrunk_mean": eng.state.shrunk_mean(s) if s else None,
        "bridging": {"status": res["bridging"]["status"][fi]} if res is not None and fi is not None else None,
        "outcomes": ((fitted or {}).get("outcomes") or {}).get(target),
    }


def badge_from_engine(d: Mapping[str, Any]) -> Scores:
    """Only what a list badge shows (count, mean, bridging status, communities): cheap."""
    b = d.get("bridging")
    status = b.get("status") if isinstance(b, Mapping) else None
    o = d.get("outcomes")
    return Scores(
        count=_i(d.get("count")),
        mean=_f(d.get("mean")),
        bridging=Bridging(str(status) if status in BRIDGING_STATUSES else "pending"),
        source="engine",
        communities=_i(o.get("communities")) if isinstance(o, Mapping) else 0,
        success_rate=_f(o.get("success_rate")) if isinstance(o, Mapping) else None,
        shrunk_mean=_f(d.get("shrunk_mean")),
    )


# --------------------------------------------------------------------------- pages



def settle(s: Scores) -> Scores:
    """Fewer raters than MIN_RATERS means "insufficient" whatever was (not) computed:
    support is the sum of rater weights, each at most 1, so it cannot reach the minimum."""
    if s.bridging.status == "pending" and s.count < MIN_RATERS:
        return replace(s, bridging=Bridging("insufficient", s.bridging.score, s.bridging.factor))
    return s


async def badges(request: Request, targets: Sequence[str], proposals: Sequence[str] = ()) -> dict[str, Scores]:
    """Scores for a list (count, mean, bridging status, communities), one per target."""
    out: dict[str, Scores] = {}
    eng = engine(request)
    for t in targets:
        if (got := engine_badge(eng, t)) is not None:
            out[t] = badge_from_engine(got)
    if eng.as_of_seq >= request.app.state.hub.head:
        # The engine has applied the whole log: a live target it has no sums for has no current
        # rating and no outcome report, so the ratings table would say the same (one trip less).
        # (It drops a retracted target's sums: those still go to the table.)
        own = set(proposals)
        for t in targets:
            if t not in out and t not in eng.ledger.retracted:
                out[t] = Scores(communities=0 if t in own else None)
    missing = [t for t in targets if t not in out]
    need = [p for p in proposals if p not in out]
    if missing:
        stats, tried = await reader(request).run(
            lambda conn: (queries.rating_stats(conn, missing), queries.communities_tried(conn, need) if need else {})
        )
        for t in missing:
            s = stats.get(t)
            out[t] = Scores(count=s.count, mean=s.mean) if s else Scores()
        for p in need:
            out[p] = replace(out[p], communities=tried.get(p, 0))
    return {t: settle(s) for t, s in out.items()}


async def full(request: Request, target: str) -> Scores:
    """Everything a target's own page shows."""
    got = engine(request).get(target)
    if got is not None:
        s = from_engine(got)
        if not s.histogram and s.count:
            s = replace(s, histogram=tuple(await reader(request).run(lambda conn: queries.histogram(conn, target))))
        s = replace(s, history=tuple(engine(request).history_of(target)))
        return settle(s)
    return settle(await reader(request).run(lambda conn: from_ratings_table(conn, target)))


def from_ratings_table(conn: Connection, target: str) -> Scores:
    """What the ratings table alone says about a target (when no engine has it)."""
    hist, stats = queries.histogram_and_stats(conn, target)
    if stats is None:
        return Scores()
    crit = queries.criteria_stats(conn, target)
    return Scores(
        count=stats.count,
        mean=stats.mean,
        criteria=tuple(
            sorted((CriterionScore(k, v.count, v.mean) for k, v in crit.items()), key=lambda c: (-c.count, c.key))
        ),
        histogram=tuple(hist),
    )


def summarize_reports(reports: Sequence[Stored]) -> OutcomeSummary:
    """The outcome summary of a proposal's reports when the engine has none yet.

    The same summary the engine publishes (:func:`raters.outcomes.summarize_outcomes`:
    latest report per community, counts, smoothed success rate, pooled metrics).
    """
    summary = summarize_outcomes(
        [
            {
                "community": s.event.author,
                "status": s.event.body["status"],
                "verdict": s.event.body.get("verdict"),
                "metrics": s.event.body.get("metrics") or [],
                "seq": s.seq,
            }
            for s in reports
        ],
        credibility={},  # credibility needs the engine: the fallback pools nothing, it counts
    )
    return OutcomeSummary(
        communities=summary.communities,
        by_status=summary.by_status,
        by_verdict=summary.by_verdict,
        success_rate=_f(summary.success_rate) if summary.communities else None,
        metrics=tuple(
            MetricSummary(m.name, m.units, m.reports, _f(m.mean), _f(m.low), _f(m.high), _f(m.i2), _f(m.range_low), _f(m.range_high), m.not_pooled)
            for m in summary.metrics
        ),
    )
