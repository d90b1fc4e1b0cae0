"""Outcome summaries: latest report per community, random-effects pooling of bounded log
ratios, credibility, self-reports shown but not pooled."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from scipy import stats

from raters.outcomes import (
    AGE_FULL,
    AGE_MIN,
    ENDORSE_FULL,
    LOG_BOUND,
    N_CAP,
    Metric,
    OutcomeReport,
    community_credibility,
    log_ratio,
    pool_random_effects,
    relative_change,
    summarize_outcomes,
)


def _m(name: str, baseline: float, observed: float | None, n: float, hib: bool = True) -> dict[str, Any]:
    return {"name": name, "unit": "kg", "baseline": baseline, "observed": observed,
            "n": n, "higher_is_better": hib}  # fmt: skip


REPORTS: list[dict[str, Any]] = [
    {"community": "a", "status": "running", "verdict": None, "seq": 1,
     "metrics": [_m("yield", 10, 11, 5)]},
    {"community": "a", "status": "completed", "verdict": "success", "seq": 7,
     "metrics": [_m("yield", 10, 12, 10), _m("waste", 4, 3, 10, hib=False)]},
    {"community": "b", "status": "completed", "verdict": "failure", "seq": 3,
     "metrics": [_m("yield", 20, 18, 30), _m("waste", 0, 1, 10, hib=False)]},
    {"community": "c", "status": "abandoned", "verdict": None, "seq": 4, "metrics": []},
]  # fmt: skip


def _honest(cost: tuple[float, ...] = (-0.18, -0.21, -0.24)) -> list[dict[str, Any]]:
    return [
        {"community": f"h{i}", "status": "completed", "verdict": "success", "seq": 10 + i,
         "metrics": [_m("cost", 100, 100 * (1 + c), 100 * (i + 1), hib=False)]}
        for i, c in enumerate(cost)
    ]  # fmt: skip


def test_latest_per_community_counts() -> None:
    s = summarize_outcomes(REPORTS)
    assert s.communities == 3
    assert s.by_status == (("abandoned", 1), ("completed", 2))
    assert s.by_verdict == (("failure", 1), ("success", 1))
    assert (s.completed, s.successes) == (2, 1)
    assert s.success_rate == pytest.approx((1 + 1) / (2 + 2))


def test_random_effects_by_hand() -> None:
    """DerSimonian-Laird on the log ratios, computed here independently."""
    s = summarize_outcomes(REPORTS)
    yield_ = next(m for m in s.metrics if m.name == "yield")
    y = np.array([math.log(12 / 10), math.log(18 / 20)])
    v = np.array([1 / 10, 1 / 30])
    u = 1 / v
    yf = (u * y).sum() / u.sum()
    q = (u * (y - yf) ** 2).sum()
    tau2 = max(0.0, (q - 1) / (u.sum() - (u * u).sum() / u.sum()))
    w = 1 / (v + tau2)
    est = (w * y).sum() / w.sum()
    se = math.sqrt((w * w * (v + tau2)).sum()) / w.sum()
    half = stats.t.ppf(0.975, 1) * se
    assert yield_.reports == 2 and yield_.total_n == 40
    assert yield_.mean == pytest.approx(math.expm1(est))
    assert yield_.se == pytest.approx(se)
    assert (yield_.low, yield_.high) == pytest.approx((math.expm1(est - half), math.expm1(est + half)))
    assert yield_.tau2 == pytest.approx(tau2)
    assert yield_.i2 == pytest.approx(max(0.0, (q - 1) / q))
    assert (yield_.range_low, yield_.range_high) == pytest.approx((-0.1, 0.2))
    waste = next(m for m in s.metrics if m.name == "waste")
    # lower is better: 4 -> 3 is 25 % better; b's zero baseline is skipped
    assert waste.mean == pytest.approx(0.25)
    assert waste.skipped == 1 and waste.reports == 1
    assert waste.se is None and waste.low is None and waste.tau2 is None


def test_relative_change_and_log_ratio() -> None:
    assert relative_change(Metric("x", "", -2.0, -1.0, 1)) == pytest.approx(0.5)
    assert relative_change(Metric("x", "", 2.0, 1.0, 1, higher_is_better=False)) == 0.5
    assert relative_change(Metric("x", "", 0.0, 1.0, 1)) is None
    assert log_ratio(Metric("x", "", 2.0, 1.0, 1, higher_is_better=False)) == (pytest.approx(math.log(2)), False)
    assert log_ratio(Metric("x", "", 1e-9, 1e9, 1)) == (LOG_BOUND, True)
    assert log_ratio(Metric("x", "", 1.0, -1.0, 1)) is None  # a sign change has no ratio
    assert log_ratio(Metric("x", "", 1.0, 0.0, 1)) is None


def test_pool_single_and_identical() -> None:
    assert pool_random_effects([0.3], [1.0], [1.0]).se is None
    p = pool_random_effects([0.1, 0.1, 0.1], [1.0, 0.5, 0.2], [1.0, 1.0, 1.0])
    assert p.estimate == pytest.approx(0.1) and p.tau2 == 0.0 and p.i2 == 0.0
    with pytest.raises(ValueError):
        pool_random_effects([], [], [])


def test_one_liar_with_a_billion_cannot_flip_the_pool() -> None:
    """The issue's attack: three honest communities at about -21 % cost, one report of
    n = 10^9 (capped at N_CAP) and one of baseline 1e-9 / observed 1e9 (bounded)."""
    honest = summarize_outcomes(_honest()).metrics[0]
    liars = [
        *_honest(),
        {"community": "liar", "status": "completed", "verdict": "failure", "seq": 50,
         "metrics": [_m("cost", 100, 200, 10**9, hib=False)]},
        {"community": "absurd", "status": "completed", "verdict": "failure", "seq": 51,
         "metrics": [_m("cost", 1e-9, 1e9, 10**9, hib=False)]},
    ]  # fmt: skip
    s = summarize_outcomes(liars)
    m = s.metrics[0]
    assert m.clipped == 1 and m.total_n == 3 * 0 + 100 + 200 + 300 + 2 * N_CAP
    assert m.mean is not None and m.mean > -0.91  # bounded: never "-1e18 %"
    assert m.i2 is not None and m.i2 > 0.9  # the heterogeneity is shown beside it
    assert m.range_low == pytest.approx(1 - 10)  # 1 - exp(ln 10): the bound, shown
    # and with credibility (fresh keys have none), the liars are shown, not pooled
    cred = {f"h{i}": 1.0 for i in range(3)}
    s2 = summarize_outcomes(liars, credibility=cred)
    assert s2.communities == 5 and s2.not_pooled == 2 and s2.metrics[0].not_pooled == 2
    assert s2.metrics[0].mean == pytest.approx(honest.mean)
    assert s2.success_rate == pytest.approx((3 + 1) / (3 + 2))


def test_fifty_fake_towns_do_not_move_the_success_rate() -> None:
    fakes = [{"community": f"fake{i}", "status": "completed", "verdict": "failure", "seq": 100 + i,
              "metrics": []} for i in range(50)]  # fmt: skip
    cred = {f"h{i}": community_credibility(AGE_FULL, ENDORSE_FULL, 1 / 53) for i in range(3)}
    cred |= {f"fake{i}": community_credibility(1, 0.0, 1 / 53) for i in range(50)}
    s = summarize_outcomes(_honest() + fakes, credibility=cred)
    assert s.success_rate == pytest.approx(0.8)
    assert s.by_verdict == (("failure", 50), ("success", 3))  # still shown


def test_author_reports_are_shown_not_pooled() -> None:
    own = {"community": "author", "status": "completed", "verdict": "success", "seq": 99,
           "metrics": [_m("cost", 100, 0.1, 10**9, hib=False)]}  # fmt: skip
    s = summarize_outcomes([*_honest(), own], author="author")
    base = summarize_outcomes(_honest())
    assert s.self_reports == 1 and s.communities == 4
    assert s.metrics[0].mean == pytest.approx(base.metrics[0].mean)
    assert s.success_rate == base.success_rate


def test_community_credibility_rules() -> None:
    assert community_credibility(AGE_MIN - 1, 100.0, 1.0) == 0.0  # too young
    assert community_credibility(AGE_FULL, ENDORSE_FULL, 0.0) == 1.0
    assert community_credibility(AGE_FULL / 2, ENDORSE_FULL, 0.0) == pytest.approx(0.5)
    assert community_credibility(AGE_FULL, 0.0, 0.25) == pytest.approx(0.25)  # unendorsed share
    assert community_credibility(AGE_FULL, -0.1, 1.0) == 0.0  # distrusted


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


def test_unmeasured_and_zero_n_are_skipped_not_fatal() -> None:
    reports = [
        {"community": "a", "status": "running", "verdict": None, "seq": 1, "metrics": [_m("m", 10, None, 5)]},
        {"community": "b", "status": "completed", "verdict": "success", "seq": 2, "metrics": [_m("m", 10, 12, 5)]},
        {"community": "c", "status": "completed", "verdict": "success", "seq": 3, "metrics": [_m("m", 10, 12, 0)]},
    ]
    (m,) = summarize_outcomes(reports).metrics
    assert m.reports == 1 and m.skipped == 2 and abs(m.mean - 0.2) < 1e-12
