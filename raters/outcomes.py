"""Outcome summaries per proposal: the one place outcome reports are summarized.

Rules (docs/raters.md, "Outcome evidence", has the reasoning and the threat model):

* **Latest report per community.**  Only each community's latest report counts: the one
  with the greatest ``seq`` (the forum's log position); reports with equal ``seq`` (or
  none given) are ordered by their position in the input list, later wins; a report
  without ``seq`` is older than any report with one.
* **Shown, not pooled.**  Every latest report is counted in ``communities``,
  ``by_status`` and ``by_verdict``.  A report is *pooled* (enters the success rate and
  the metric figures) only if its community is not the proposal's author
  (``author=``: a proposal's author reporting on it, or a community keyed by the
  author's key, is a self-report) and its credibility is > 0.
* **Credibility** ``c`` in [0, 1] per community (``credibility=``; default 1 for all,
  for callers without a log).  The forum computes it with :func:`community_credibility`
  from facts that cost something to create: age in the log, and ratings of the
  community and of its reports by raters with standing.
* **Success rate**, credibility-weighted and smoothed:
  ``(sum c * success + 1) / (sum c * completed + 2)`` over pooled reports whose status
  is ``"completed"``; 0.5 with none (a Beta(1, 1) prior).
* **Metrics**, pooled by name.  Each metric gives a bounded **log ratio**
  ``y = ln(observed / baseline)``, negated when ``higher_is_better`` is false (so
  positive = better), clipped to ``[-LOG_BOUND, LOG_BOUND]`` (a factor of 10 either
  way).  Skipped (counted in ``skipped``): non-finite values, ``observed`` null,
  ``n <= 0``, a zero baseline or ``observed / baseline <= 0`` (a sign change has no
  ratio).  Within-report variance ``v = UNIT_VARIANCE / min(n, N_CAP)``: one report
  weighs at most ``N_CAP`` observations, whatever ``n`` it claims.  Random-effects
  meta-analysis (DerSimonian-Laird): with fixed weights ``u = c / v``,
  ``Q = sum u (y - y_fixed)^2``, ``tau^2 = max(0, (Q - (k - 1)) / (sum u - sum u^2 / sum u))``
  (between-community variance), then weights ``w = c / (v + tau^2)``, pooled
  ``Y = sum w y / sum w``, ``var(Y) = sum w^2 (v + tau^2) / (sum w)^2``, 95 % interval
  ``Y +- t(0.975, k - 1) * sqrt(var)``; ``I^2 = max(0, (Q - (k - 1)) / Q)``.  Published
  figures are relative changes again: ``exp(Y) - 1`` for a higher-is-better metric,
  ``1 - exp(-Y)`` for a lower-is-better one (the metric's majority direction; ties:
  higher is better), positive = better; ``range_low`` / ``range_high`` are the smallest
  and largest pooled report on the same scale.  With one pooled report ``se``, ``low``,
  ``high``, ``tau2`` and ``i2`` are None: the spread between communities is unknown.

Constants: COMPLETED_STATUS = "completed", SUCCESS_VERDICT = "success",
CONFIDENCE = 0.95, LOG_BOUND = ln 10, N_CAP = 1000, UNIT_VARIANCE = 1.0,
AGE_MIN = 100, AGE_FULL = 500, ENDORSE_FULL = 2.0, UNENDORSED_BUDGET = 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COMPLETED_STATUS = "completed"
SUCCESS_VERDICT = "success"
CONFIDENCE = 0.95
LOG_BOUND = math.log(10.0)
N_CAP = 1000.0
UNIT_VARIANCE = 1.0
AGE_MIN = 100.0
AGE_FULL = 500.0
ENDORSE_FULL = 2.0
UNENDORSED_BUDGET = 1.0


@dataclass(frozen=True)
class Metric:
    """One measured metric in an outcome report.

    Fields: name, unit, baseline, observed, n (sample size), higher_is_better.
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

    Fields: community (who reports), status (e.g. "planned", "running",
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
    """Pooled change of one metric across communities (positive = better).

    Fields: name; units (sorted distinct units seen); reports (k, number pooled);
    total_n (sum of the capped n pooled); mean, low, high (pooled relative change and
    95 % interval); se (standard error of the pooled log ratio); tau2 (between-community
    variance of the log ratio), i2 (share of the spread that is between communities),
    range_low, range_high (smallest and largest pooled report); clipped (pooled reports
    whose log ratio hit the bound); skipped (unusable values); not_pooled (usable
    reports left out: self-reports or no credibility).
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
    tau2: float | None = None
    i2: float | None = None
    range_low: float | None = None
    range_high: float | None = None
    clipped: int = 0
    not_pooled: int = 0


@dataclass(frozen=True)
class OutcomeSummary:
    """Summary of a proposal's outcome reports.

    Fields: communities (number of communities reporting), by_status and by_verdict
    (sorted ``(value, count)`` tuples, every latest report), completed and successes
    (pooled reports), success_rate (credibility-weighted, smoothed), metrics (one
    :class:`MetricSummary` per name, sorted by name), self_reports (latest reports by
    the proposal's author), not_pooled (latest reports left out of the pooled figures).
    """

    communities: int
    by_status: tuple[tuple[str, int], ...]
    by_verdict: tuple[tuple[str, int], ...]
    completed: int
    successes: int
    success_rate: float
    metrics: tuple[MetricSummary, ...] = field(default_factory=tuple)
    self_reports: int = 0
    not_pooled: int = 0


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
            # null = not measured yet: NaN, so log_ratio skips (and counts) it
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
    """Signed relative change of a metric, positive = better (unbounded; for display).

    ``(observed - baseline) / |baseline|``, negated when ``higher_is_better`` is false;
    None when the baseline is 0 or a value is not finite.
    """
    if not (math.isfinite(metric.baseline) and math.isfinite(metric.observed)):
        return None
    if metric.baseline == 0:
        return None
    rel = (metric.observed - metric.baseline) / abs(metric.baseline)
    return rel if metric.higher_is_better else -rel


def log_ratio(metric: Metric) -> tuple[float, bool] | None:
    """Bounded log ratio of a metric, positive = better, and whether it was clipped.

    ``ln(observed / baseline)`` (negated when lower is better) clipped to
    ``[-LOG_BOUND, LOG_BOUND]``; None when a value is not finite, the baseline is 0 or
    observed and baseline differ in sign (or observed is 0).
    """
    b, o = metric.baseline, metric.observed
    if not (math.isfinite(b) and math.isfinite(o)) or b == 0 or o / b <= 0:
        return None
    y = math.log(o / b)
    if not metric.higher_is_better:
        y = -y
    clipped = abs(y) > LOG_BOUND
    return max(-LOG_BOUND, min(LOG_BOUND, y)), clipped


def to_change(y: float, higher_is_better: bool) -> float:
    """A log ratio (positive = better) as a relative change, positive = better."""
    return math.expm1(y) if higher_is_better else -math.expm1(-y)


@dataclass(frozen=True)
class Pooled:
    """Random-effects pooling of log ratios (module doc): estimate, se, interval, tau2, I2."""

    estimate: float
    se: float | None
    low: float | None
    high: float | None
    tau2: float | None
    i2: float | None


def pool_random_effects(y: Sequence[float], v: Sequence[float], c: Sequence[float]) -> Pooled:
    """DerSimonian-Laird random-effects pooling with credibility weights.

    Inputs: k >= 1 log ratios ``y``, within-report variances ``v`` (> 0) and
    credibilities ``c`` (> 0).  Output: :class:`Pooled` on the log scale; with k == 1
    only the estimate.
    """
    ya, va, ca = (np.asarray(a, dtype=np.float64) for a in (y, v, c))
    k = len(ya)
    if k == 0 or not (len(va) == len(ca) == k) or (va <= 0).any() or (ca <= 0).any():
        raise ValueError("need k >= 1 values with positive variances and credibilities")
    if k == 1:
        return Pooled(float(ya[0]), None, None, None, None, None)
    u = ca / va
    y_fixed = float((u * ya).sum() / u.sum())
    q = float((u * (ya - y_fixed) ** 2).sum())
    denom = float(u.sum() - (u * u).sum() / u.sum())
    tau2 = max(0.0, (q - (k - 1)) / denom) if denom > 0 else 0.0
    w = ca / (va + tau2)
    est = float((w * ya).sum() / w.sum())
    se = math.sqrt(float((w * w * (va + tau2)).sum()) / float(w.sum()) ** 2)
    from scipy import stats  # imported on first use: scipy.stats costs seconds at server start

    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * se
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return Pooled(est, se, est - half, est + half, tau2, i2)


def community_credibility(age: float, endorsement: float, unendorsed_share: float) -> float:
    """Credibility of a reporting community, in [0, 1].

    Inputs: ``age`` = log positions between the community's first profile and its
    report; ``endorsement`` = sum over current ratings of the community's did:key and
    of its reports of ``rater standing weight * score``; ``unendorsed_share`` =
    ``UNENDORSED_BUDGET / (number of communities reporting on the proposal)``.
    Output: ``a * (e + (1 - e) * share)`` with ``a = 0`` below ``AGE_MIN`` positions,
    else ``min(1, age / AGE_FULL)``, and
    ``e = clip(endorsement / ENDORSE_FULL, 0, 1)``; 0 when the endorsement is negative
    (raters with standing distrust it).  So a fresh community counts for nothing, and
    all unendorsed communities together weigh at most ``UNENDORSED_BUDGET`` communities.
    """
    if endorsement < 0:
        return 0.0
    a = 0.0 if age < AGE_MIN else min(1.0, age / AGE_FULL)
    e = min(1.0, endorsement / ENDORSE_FULL)
    return a * (e + (1.0 - e) * min(1.0, max(0.0, unendorsed_share)))


def summarize_outcomes(
    reports: Sequence[OutcomeReport | Mapping[str, Any]],
    *,
    credibility: Mapping[str, float] | None = None,
    author: str | None = None,
) -> OutcomeSummary:
    """Summarize a proposal's outcome reports (rules and constants in the module doc).

    Input: the reports about one proposal, as :class:`OutcomeReport` or plain dicts
    (``community``, ``status``, ``verdict``, ``metrics``: list of dicts with ``name``,
    ``unit``, ``baseline``, ``observed``, ``n``, ``higher_is_better``; optional ``seq``);
    ``credibility``: community -> credibility in [0, 1] (missing = 0; None = 1 for
    every community); ``author``: the proposal's author (its reports are not pooled).
    Output: :class:`OutcomeSummary`.  Independent of input order when ``seq`` is given.
    """
    latest = latest_per_community(reports)
    by_status: dict[str, int] = {}
    by_verdict: dict[str, int] = {}
    completed = successes = 0
    w_completed = w_success = 0.0
    self_reports = not_pooled = 0
    # name -> [(community, y, v, c, capped n, higher_is_better, clipped)]
    values: dict[str, list[tuple[str, float, float, float, float, bool, bool]]] = {}
    skipped: dict[str, int] = {}
    left_out: dict[str, int] = {}
    units: dict[str, set[str]] = {}
    for rep in latest:
        by_status[rep.status] = by_status.get(rep.status, 0) + 1
        if rep.verdict is not None:
            by_verdict[rep.verdict] = by_verdict.get(rep.verdict, 0) + 1
        own = author is not None and rep.community == author
        self_reports += own
        c = 0.0 if own else (1.0 if credibility is None else float(credibility.get(rep.community, 0.0)))
        pooled = c > 0 and math.isfinite(c)
        not_pooled += not pooled
        if pooled and rep.status == COMPLETED_STATUS:
            completed += 1
            successes += rep.verdict == SUCCESS_VERDICT
            w_completed += c
            w_success += c * (rep.verdict == SUCCESS_VERDICT)
        for m in rep.metrics:
            units.setdefault(m.name, set()).add(m.unit)
            skipped.setdefault(m.name, 0)
            lr = log_ratio(m)
            if lr is None or not math.isfinite(m.n) or m.n <= 0:
                skipped[m.name] += 1
                continue
            if not pooled:
                left_out[m.name] = left_out.get(m.name, 0) + 1
                continue
            n = min(m.n, N_CAP)
            values.setdefault(m.name, []).append((rep.community, lr[0], UNIT_VARIANCE / n, c, n, m.higher_is_better, lr[1]))
    summaries = []
    for name in sorted(units):
        vals = sorted(values.get(name, []))
        if vals:
            hib = sum(1 if v[5] else -1 for v in vals) >= 0
            p = pool_random_effects([v[1] for v in vals], [v[2] for v in vals], [v[3] for v in vals])
            ch = [to_change(v[1], hib) for v in vals]
            summaries.append(
                MetricSummary(
                    name=name,
                    units=tuple(sorted(units[name])),
                    reports=len(vals),
                    total_n=math.fsum(v[4] for v in vals),
                    mean=to_change(p.estimate, hib),
                    se=p.se,
                    low=None if p.low is None else to_change(p.low, hib),
                    high=None if p.high is None else to_change(p.high, hib),
                    skipped=skipped[name],
                    tau2=p.tau2,
                    i2=p.i2,
                    range_low=min(ch),
                    range_high=max(ch),
                    clipped=sum(v[6] for v in vals),
                    not_pooled=left_out.get(name, 0),
                )
            )
        else:
            summaries.append(
                MetricSummary(name, tuple(sorted(units[name])), 0, 0.0, None, None, None, None, skipped[name], not_pooled=left_out.get(name, 0))
            )
    return OutcomeSummary(
        communities=len(latest),
        by_status=tuple(sorted(by_status.items())),
        by_verdict=tuple(sorted(by_verdict.items())),
        completed=completed,
        successes=successes,
        success_rate=(w_success + 1.0) / (w_completed + 2.0),
        metrics=tuple(summaries),
        self_reports=self_reports,
        not_pooled=not_pooled,
    )
