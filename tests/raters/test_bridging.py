"""Bridging matrix factorization: optimality, statuses, identification, warm start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from raters import bridging
from raters.bridging import classify, fit_bridging
from raters.ratings import Ratings
from raters.synthetic import (
    KIND_BRIDGING,
    KIND_PARTISAN_A,
    KIND_PARTISAN_B,
    KIND_REJECTED,
    two_factions,
)


def _loss(params: np.ndarray, r: Ratings, w: np.ndarray) -> float:
    nr, nt = r.n_raters, r.n_targets
    mu = params[0]
    b, f = params[1 : 1 + nr], params[1 + nr : 1 + 2 * nr]
    c, g = params[1 + 2 * nr : 1 + 2 * nr + nt], params[1 + 2 * nr + nt :]
    res = r.score - mu - b[r.rater] - c[r.target] - f[r.rater] * g[r.target]
    return float(
        (w[r.rater] * res**2).sum()
        + bridging.INTERCEPT_REG * (w @ (b * b) + c @ c)  # the prior weighs like the data
        + bridging.FACTOR_REG * (w @ (f * f) + g @ g)
    )


def test_fit_reaches_the_optimum_of_the_documented_objective() -> None:
    d = two_factions(12, 6, 50, seed=4)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    w = np.linspace(0.2, 1.0, d.n_raters)
    fit = fit_bridging(r, weights=w)
    assert fit.converged
    x = np.concatenate(
        [[fit.global_intercept], fit.rater_intercept, fit.rater_factor,
         fit.target_intercept, fit.target_factor]
    )  # fmt: skip
    # The fit's own loss is the objective at its (pre-normalization) optimum.
    best = minimize(_loss, x, args=(r, w), method="BFGS", options={"gtol": 1e-10})
    assert fit.loss == pytest.approx(best.fun, abs=1e-7)
    # Normalization only rescales f and g: predictions and intercepts are unchanged.
    assert _loss(x, r, w) >= fit.loss - 1e-9


def test_intercept_stationarity_conditions() -> None:
    d = two_factions(30, 10, 200, seed=2)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    fit = fit_bridging(r)
    res = (
        r.score - fit.global_intercept - fit.rater_intercept[r.rater]
        - fit.target_intercept[r.target] - fit.rater_factor[r.rater] * fit.target_factor[r.target]
    )  # fmt: skip
    np.testing.assert_allclose(
        np.bincount(r.target, weights=res, minlength=10),
        bridging.INTERCEPT_REG * fit.target_intercept, atol=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(
        np.bincount(r.rater, weights=res, minlength=30),
        bridging.INTERCEPT_REG * fit.rater_intercept, atol=1e-5,
    )  # fmt: skip
    assert abs(res.sum()) < 1e-5


def test_two_factions_bridging_and_partisan_targets() -> None:
    d = two_factions(200, 40, 4000, seed=1)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    fit = fit_bridging(r)
    status = np.array(fit.status)
    assert (status[d.kind == KIND_BRIDGING] == "bridging").all()
    for kind in (KIND_PARTISAN_A, KIND_PARTISAN_B):
        assert (status[d.kind == kind] == "split").all()
    assert (status[d.kind == KIND_REJECTED] == "rejected").all()
    ga = fit.target_factor[d.kind == KIND_PARTISAN_A]
    gb = fit.target_factor[d.kind == KIND_PARTISAN_B]
    assert (np.sign(ga) == np.sign(ga[0])).all() and (np.sign(gb) == -np.sign(ga[0])).all()
    assert np.abs(ga).min() >= 0.5
    fa = fit.rater_factor[d.faction == 0]
    fb = fit.rater_factor[d.faction == 1]
    assert np.sign(fa.mean()) == -np.sign(fb.mean())
    # the side that likes partisan-A targets has the same factor sign as those targets
    assert np.sign(fa.mean()) == np.sign(ga[0])
    assert (fit.side_low[d.kind == KIND_BRIDGING] >= bridging.SUPPORT_LEVEL).all()
    assert (fit.side_high[d.kind == KIND_REJECTED] <= bridging.REJECT_LEVEL).all()
    assert fit.rejected().tolist() == (d.kind == KIND_REJECTED).tolist()


def test_identification_scale_and_sign() -> None:
    d = two_factions(60, 12, 500, seed=7)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    fit = fit_bridging(r)
    rms = np.sqrt(np.mean(fit.rater_factor[r.rater] ** 2))
    assert rms == pytest.approx(1.0)
    assert fit.target_factor[np.argmax(np.abs(fit.target_factor))] > 0


def test_classify_rules() -> None:
    sl, rl, sp, mr, sm = bridging.SUPPORT_LEVEL, bridging.REJECT_LEVEL, bridging.SPLIT_LEVEL, bridging.MIN_RATERS, bridging.SIDE_MIN
    rows = [  # low, high, mid, support, side support -> status
        (sl, 0.9, 0.6, mr, sm, "bridging"),
        (sl, 0.9, 0.6, mr, sm - 0.1, "broad_support"),  # one side thin: not "across camps"
        (sl - 1e-9, 0.9, 0.6, mr, sm, "broad_support"),
        (-1e-9, 0.9, 0.6, mr, sm, "unclear"),
        (-sp - 1e-9, sp + 1e-9, 0.0, mr, sm, "split"),
        (-sp, 0.9, 0.4, mr, sm, "unclear"),
        (-0.9, rl, -0.6, mr, sm, "rejected"),
        (-0.9, rl + 1e-9, -0.6, mr, sm, "unclear"),
        (0.9, 0.9, 0.9, mr - 1e-9, sm, "insufficient"),
    ]
    lo, hi, mid, n, side, want = zip(*rows, strict=True)
    assert classify(lo, hi, mid, n, side) == want


def test_every_group_above_threshold_is_never_split() -> None:
    """Both sides' expected ratings above +0.3: positive, whatever the split."""
    rng = np.random.default_rng(0)
    lo = rng.uniform(0.3, 1.0, 500)
    hi = lo + rng.uniform(0.0, 0.7, 500)
    status = classify(lo, hi, (lo + hi) / 2, np.full(500, 9.0), rng.uniform(0, 5, 500))
    assert set(status) <= {"bridging", "broad_support"}


def test_hysteresis_keeps_a_status_within_the_margin() -> None:
    h = bridging.HYSTERESIS
    lo = [bridging.SUPPORT_LEVEL - h / 2, bridging.SUPPORT_LEVEL - 2 * h]
    args = (lo, [0.9, 0.9], [0.6, 0.6], [9.0, 9.0], [4.0, 4.0])
    assert classify(*args) == ("broad_support", "broad_support")
    assert classify(*args, previous=("bridging", "bridging")) == ("bridging", "broad_support")
    # the support count has no margin
    assert classify(lo, [0.9, 0.9], [0.6, 0.6], [4.0, 4.0], [4.0, 4.0], previous=("bridging", None)) == ("insufficient", "insufficient")


def test_warm_start_matches_cold_start() -> None:
    d = two_factions(100, 30, 1500, seed=3)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    cold = fit_bridging(r)
    warm = fit_bridging(r, init=cold)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.target_intercept, cold.target_intercept, atol=1e-5)
    np.testing.assert_allclose(warm.target_factor, cold.target_factor, atol=1e-5)
    # warm start from a fit over fewer raters and targets (the forum grew since)
    small = Ratings.build(
        d.rater[(d.rater < 80) & (d.target < 25)], d.target[(d.rater < 80) & (d.target < 25)],
        d.score[(d.rater < 80) & (d.target < 25)], 80, 25,
    )  # fmt: skip
    grown = fit_bridging(r, init=fit_bridging(small))
    np.testing.assert_allclose(grown.target_intercept, cold.target_intercept, atol=1e-5)


def test_zero_weight_equals_removing_the_rater() -> None:
    d = two_factions(40, 10, 300, seed=5)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    w = np.ones(40)
    w[:5] = 0.0
    weighted = fit_bridging(r, weights=w)
    keep = d.rater >= 5
    removed = fit_bridging(Ratings.build(d.rater[keep], d.target[keep], d.score[keep], 40, 10))
    np.testing.assert_allclose(weighted.target_intercept, removed.target_intercept, atol=1e-5)
    assert np.all(weighted.rater_intercept[:5] == 0.0)
    assert np.all(weighted.rater_factor[:5] == 0.0)


def test_insufficient_targets_and_bad_weights() -> None:
    r = Ratings.build([0, 1, 2, 3], [0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0], 4, 2)
    fit = fit_bridging(r)
    assert fit.status == ("insufficient", "insufficient")
    assert fit.target_raters.tolist() == [4, 0]
    with pytest.raises(ValueError):
        fit_bridging(r, weights=[1.0, -1.0, 1.0, 1.0])


def test_hysteresis_works_in_both_directions() -> None:
    """A kept status must not become a lock: a status tested earlier (here "bridging")
    takes over once it holds by the margin, and the reference comes back within it."""
    h, level = bridging.HYSTERESIS, bridging.SUPPORT_LEVEL
    lows = [level + h / 2, level + 2 * h, level - h / 2, level - 2 * h]
    n = len(lows)
    args = (lows, [0.9] * n, [0.6] * n, [9.0] * n, [4.0] * n)
    assert classify(*args) == ("bridging", "bridging", "broad_support", "broad_support")
    assert classify(*args, previous=("broad_support",) * n) == ("broad_support", "bridging", "broad_support", "broad_support")
    assert classify(*args, previous=("bridging",) * n) == ("bridging", "bridging", "bridging", "broad_support")
    # a split target whose sides drift just inside +-0.1 stays split; unclear needs the margin to become split
    split = ([-0.08, -0.2], [0.3, 0.3], [0.1, 0.1], [9.0, 9.0], [4.0, 4.0])
    assert classify(*split) == ("unclear", "split")
    assert classify(*split, previous=("split", "unclear")) == ("split", "split")
    assert classify([-0.12], [0.3], [0.1], [9.0], [4.0], previous=("unclear",)) == ("unclear",)
