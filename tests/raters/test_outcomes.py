"""Outcome summaries: latest report per community, counts, pooled metrics, success rate."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from scipy import stats

from raters.outcomes import (
    Metric,
    OutcomeReport,
    pool_metric,
    relative_change,
    summarize_outcomes,
)


def _m(name: str, baseline: float, observed: float, n: float, hib: bool = True) -> dict[str, Any]:
    return {"name": name, "unit": "kg", "baseline": baseline, "observed": observed,
            "n": n, "higher_is_better": hib}  # fmt: skip


REPORTS: list[dict[str, Any]] = [
    {"community": "a", "status": "in_progress", "verdict": None, "seq": 1,
     "metrics": [_m("yield", 10, 11, 5)]},
    {"community": "a", "status": "completed", "verdict": "success", "seq": 7,
     "metrics": [_m("yield", 10, 12, 10), _m("waste", 4, 3, 10, hib=False)]},
    {"community": "b", "status": "completed", "verdict": "failure", "seq": 3,
     "metrics": [_m("yield", 20, 18, 30), _m("waste", 0, 1, 10, hib=False)]},
    {"community": "c", "status": "abandoned", "verdict": None, "seq": 4, "metrics": []},
]  # fmt: skip


def test_latest_per_community_counts() -> None:
    s = summarize_outcomes(REPORTS)
    assert s.communities == 3
    assert s.by_status == (("abandoned", 1), ("completed", 2))
    assert s.by_verdict == (("failure", 1), ("success", 1))
    assert (s.completed, s.successes) == (2, 1)
    assert s.success_rate == pytest.approx((1 + 1) / (2 + 2))


def test_pooled_metric_by_hand() -> None:
    s = summarize_outcomes(REPORTS)
    yield_ = next(m for m in s.metrics if m.name == "yield")
    # latest: a -> +0.2 (n=10), b -> -0.1 (n=30)
    mean = (10 * 0.2 + 30 * -0.1) / 40
    se = math.sqrt(2 / 1 * (100 * (0.2 - mean) ** 2 + 900 * (-0.1 - mean) ** 2)) / 40
    half = stats.t.ppf(0.975, 1) * se
    assert yield_.reports == 2 and yield_.total_n == 40
    assert yield_.mean == pytest.approx(mean)
    assert yield_.se == pytest.approx(se)
    assert (yield_.low, yield_.high) == pytest.approx((mean - half, mean + half))
    assert yield_.units == ("kg",)
    waste = next(m for m in s.metrics if m.name == "waste")
    # lower is better: 4 -> 3 is +25 % better; b's zero baseline is skipped
    assert waste.mean == pytest.approx(0.25)
    assert waste.skipped == 1 and waste.reports == 1
    assert waste.se is None and waste.low is None and waste.high is None


def test_relative_change_sign_and_zero_baseline() -> None:
    assert relative_change(Metric("x", "", -2.0, -1.0, 1)) == pytest.approx(0.5)
    assert relative_change(Metric("x", "", 2.0, 1.0, 1, higher_is_better=False)) == 0.5
    assert relative_change(Metric("x", "", 0.0, 1.0, 1)) is None


def test_pool_metric_single_and_identical() -> None:
    assert pool_metric([0.3], [5]) == (0.3, None, None, None)
    mean, se, low, high = pool_metric([0.1, 0.1, 0.1], [1, 2, 3])
    assert (mean, se, low, high) == pytest.approx((0.1, 0.0, 0.1, 0.1))
    with pytest.raises(ValueError):
        pool_metric([], [])


def test_success_rate_prior_and_order_independence() -> None:
    assert summarize_outcomes([]).success_rate == 0.5
    shuffled = REPORTS[:]
    random.Random(1).shuffle(shuffled)
    assert summarize_outcomes(shuffled) == summarize_outcomes(REPORTS)
    as_objects = [
        OutcomeReport(community="a", status="completed", verdict="success", seq=None),
        OutcomeReport(community="a", status="completed", verdict="failure", seq=None),
    ]
    s = summarize_outcomes(as_objects)  # no seq: later in the list wins
    assert s.by_verdict == (("failure", 1),)


def test_unmeasured_metric_is_skipped_not_fatal() -> None:
    """The protocol allows ``observed: null`` while a pilot runs: it is skipped and counted."""
    from raters.outcomes import summarize_outcomes

    reports = [
        {"community": "a", "status": "running", "verdict": None, "seq": 1,
         "metrics": [{"name": "m", "unit": "", "baseline": 10, "observed": None, "n": 5, "higher_is_better": True}]},
        {"community": "b", "status": "completed", "verdict": "success", "seq": 2,
         "metrics": [{"name": "m", "unit": "", "baseline": 10, "observed": 12, "n": 5, "higher_is_better": True}]},
    ]
    s = summarize_outcomes(reports)
    (m,) = s.metrics
    assert m.reports == 1 and m.skipped == 1 and abs(m.mean - 0.2) < 1e-12
