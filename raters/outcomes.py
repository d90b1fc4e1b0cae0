"""Outcome summaries per proposal, from the outcome reports communities published.

Rules:

* **Latest report per community.**  Only each community's latest report counts: the one
  with the greatest ``seq`` (the forum's log position); reports with equal ``seq`` (or
  none given) are ordered by their position in the input list, later wins; a report
  without ``seq`` is older than any report with one.
* **Counts** by ``status`` and by ``verdict`` (``None`` verdicts are not counted) over
  those latest reports.
* **Success rate**, smoothed: ``(successes + 1) / (completed + 2)``, where
  ``completed`` = latest reports whose status is ``COMPLETED_STATUS = "completed"`` and
  ``successes`` = those of them whose verdict is ``SUCCESS_VERDICT = "success"``.  With
  no completed report it is 0.5 (a uniform Beta(1, 1) prior: we know nothing).
* **Metrics**, pooled by metric ``name`` over the latest reports: each metric's
  relative change ``rel = (observed - baseline) / |baseline|``, **negated when
  ``higher_is_better`` is false**, so that a positive value always means "better".
  Metrics with ``baseline == 0``, non-finite values or ``n <= 0`` are skipped (and
  counted in ``skipped``).  Pooled over the k reports with weights ``w = n``:

  - ``mean = sum(w * rel) / sum(w)``;
  - standard error (weighted, with the small-sample correction
    ``k / (k - 1)``): ``se = sqrt(k / (k - 1) * sum(w^2 (rel - mean)^2)) / sum(w)``;
  - 95 % interval ``mean +- t(0.975, k - 1) * se`` (Student t with k - 1 degrees of
    freedom, because k is small);
  - with one report (k = 1) the spread between communities is unknown: ``se``,
    ``low`` and ``high`` are ``None``.

Constants: COMPLETED_STATUS = "completed", SUCCESS_VERDICT = "success", CONFIDENCE = 0.95.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

COMPLETED_STATUS = "completed"
SUCCESS_VERDICT = "success"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Metric:
    """One measured metric in an outcome report.

    Fields: name, unit, baseline, observed, n (sample size, the pooling weight),
    higher_is_better.
    """

    name: str
    unit: str
    baseline: float
    observed: float
    n: float
    higher_is_better: bool = True


@dataclass(frozen=True)
class OutcomeReport:
    """An outcome report about a proposal.

    Fields: community (who reports), status (e.g. "planned", "in_progress",
    "completed", "abandoned"), verdict (e.g. "success", "partial", "failure", or None),
    metrics, seq (log position; None = use list order).
    """

    community: str
    status: str
    verdict: str | None = None
    metrics: tuple[Metric, ...] = ()
    seq: int | None = None


@dataclass(frozen=True)
class MetricSummary:
    """Pooled relative change of one metric across communities.

    Fields: name; units (sorted distinct units seen); reports (k, number pooled);
    total_n (sum of weights); mean (weighted mean relative change, positive = better);
    se, low, high (standard error and 95 % interval; None when k == 1);
    skipped (metrics of that name left out: zero baseline, bad values or n <= 0).
    """

    name: str
    units: tuple[str, ...]
    reports: int
    total_n: float
    mean: float | None
    se: float | None
    low: float | None
    high: float | None
    skipped: int


@dataclass(frozen=True)
class OutcomeSummary:
    """Summary of a proposal's outcome reports.

    Fields: communities (number of communities reporting), by_status and by_verdict
    (sorted ``(value, count)`` tuples), completed, successes, success_rate (smoothed,
    see module doc), metrics (one :class:`MetricSummary` per name, sorted by name).
    """

    communities: int
    by_status: tuple[tuple[str, int], ...]
    by_verdict: tuple[tuple[str, int], ...]
    completed: int
    successes: int
    success_rate: float
    metrics: tuple[MetricSummary, ...] = field(default_factory=tuple)


def _as_report(x: OutcomeReport | Mapping[str, Any]) -> OutcomeReport:
    if isinstance(x, OutcomeReport):
        return x
    metrics = tuple(
        m
        if isinstance(m, Metric)
        else Metric(
            name=str(m["name"]),
            unit=str(m.get("unit", "")),
            baseline=float(m["baseline"]),
            # null = not measured yet: NaN, so relative_change skips (and counts) it
            observed=float("nan") if m.get("observed") is None else float(m["observed"]),
            n=float(m["n"]),
            higher_is_better=bool(m.get("higher_is_better", True)),
        )
        for m in x.get("metrics", ())
    )
    seq = x.get("seq")
    return OutcomeReport(
        community=str(x["community"]),
        status=str(x["status"]),
        verdict=None if x.get("verdict") is None else str(x["verdict"]),
        metrics=metrics,
        seq=None if seq is None else int(seq),
    )


def latest_per_community(
    reports: Sequence[OutcomeReport | Mapping[str, Any]],
) -> list[OutcomeReport]:
    """Keep each community's latest report (see module doc), sorted by community.

    Input: reports as :class:`OutcomeReport` or plain dicts with the same keys.
    Output: list of :class:`OutcomeReport`, one per community.
    """
    best: dict[str, tuple[tuple[int, int, int], OutcomeReport]] = {}
    for pos, raw in enumerate(reports):
        rep = _as_report(raw)
        key = (0 if rep.seq is None else 1, rep.seq or 0, pos)
        cur = best.get(rep.community)
        if cur is None or key > cur[0]:
            best[rep.community] = (key, rep)
    return [best[c][1] for c in sorted(best)]


def relative_change(metric: Metric) -> float | None:
    """Signed relative change of a metric, positive = better.

    ``(observed - baseline) / |baseline|``, negated when ``higher_is_better`` is false;
    None when the baseline is 0 or a value is not finite.
    """
    if not (math.isfinite(metric.baseline) and math.isfinite(metric.observed)):
        return None
    if metric.baseline == 0:
        return None
    rel = (metric.observed - metric.baseline) / abs(metric.baseline)
    return rel if metric.higher_is_better else -rel


def pool_metric(
    values: Sequence[float], weights: Sequence[float]
) -> tuple[float, float | None, float | None, float | None]:
    """Weighted mean, standard error and 95 % interval of relative changes.

    Inputs: k values and k positive weights (k >= 1).
    Output: ``(mean, se, low, high)``; ``se``, ``low``, ``high`` are None when k == 1.
    Formulas in the module doc.
    """
    k = len(values)
    if k == 0 or k != len(weights):
        raise ValueError("need as many weights as values, at least one")
    wsum = math.fsum(weights)
    mean = math.fsum(w * v for v, w in zip(values, weights, strict=True)) / wsum
    if k == 1:
        return mean, None, None, None
    ss = math.fsum(w * w * (v - mean) ** 2 for v, w in zip(values, weights, strict=True))
    se = math.sqrt(k / (k - 1) * ss) / wsum
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * se
    return mean, se, mean - half, mean + half


def summarize_outcomes(
    reports: Sequence[OutcomeReport | Mapping[str, Any]],
) -> OutcomeSummary:
    """Summarize a proposal's outcome reports (rules and constants in the module doc).

    Input: the reports about one proposal, as :class:`OutcomeReport` or plain dicts
    (``community``, ``status``, ``verdict``, ``metrics``: list of dicts with ``name``,
    ``unit``, ``baseline``, ``observed``, ``n``, ``higher_is_better``; optional ``seq``).
    Output: :class:`OutcomeSummary`.  Independent of input order when ``seq`` is given.
    """
    latest = latest_per_community(reports)
    by_status: dict[str, int] = {}
    by_verdict: dict[str, int] = {}
    completed = successes = 0
    values: dict[str, list[tuple[str, float, float]]] = {}
    skipped: dict[str, int] = {}
    units: dict[str, set[str]] = {}
    for rep in latest:
        by_status[rep.status] = by_status.get(rep.status, 0) + 1
        if rep.verdict is not None:
            by_verdict[rep.verdict] = by_verdict.get(rep.verdict, 0) + 1
        if rep.status == COMPLETED_STATUS:
            completed += 1
            successes += rep.verdict == SUCCESS_VERDICT
        for m in rep.metrics:
            units.setdefault(m.name, set()).add(m.unit)
            rel = relative_change(m)
            if rel is None or not math.isfinite(m.n) or m.n <= 0:
                skipped[m.name] = skipped.get(m.name, 0) + 1
                continue
            values.setdefault(m.name, []).append((rep.community, rel, m.n))
            skipped.setdefault(m.name, 0)
    summaries = []
    mean: float | None
    se: float | None
    low: float | None
    high: float | None
    for name in sorted(units):
        vals = sorted(values.get(name, []))
        if vals:
            mean, se, low, high = pool_metric([v[1] for v in vals], [v[2] for v in vals])
            total: float = math.fsum(v[2] for v in vals)
        else:
            mean = se = low = high = None
            total = 0.0
        summaries.append(
            MetricSummary(
                name=name,
                units=tuple(sorted(units[name])),
                reports=len(vals),
                total_n=total,
                mean=mean,
                se=se,
                low=low,
                high=high,
                skipped=skipped.get(name, 0),
            )
        )
    return OutcomeSummary(
        communities=len(latest),
        by_status=tuple(sorted(by_status.items())),
        by_verdict=tuple(sorted(by_verdict.items())),
        completed=completed,
        successes=successes,
        success_rate=(successes + 1) / (completed + 2),
        metrics=tuple(summaries),
    )
