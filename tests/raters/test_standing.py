"""Rater standing: agreement with decided statuses and second-pass weights."""

from __future__ import annotations

import numpy as np
import pytest

from raters import standing as st
from raters.bridging import fit_bridging
from raters.ratings import Ratings
from raters.synthetic import KIND_BRIDGING, KIND_REJECTED, two_factions


def test_standing_counts_by_hand() -> None:
    d = two_factions(100, 20, 1600, seed=11)
    base = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    fit = fit_bridging(base)
    bridging_t = np.flatnonzero(d.kind == KIND_BRIDGING)[:4]
    rejected_t = np.flatnonzero(d.kind == KIND_REJECTED)[:3]
    assert all(fit.status[t] == "bridging" for t in bridging_t)
    assert fit.rejected()[rejected_t].all()
    # A new rater (index 100): +1 on 4 bridging (agree), -1 on 2 rejected (agree),
    # +1 on 1 rejected (disagree), 0 on one bridging target (skipped).
    extra_t = np.r_[bridging_t, rejected_t, np.flatnonzero(d.kind == KIND_BRIDGING)[4]]
    extra_s = np.array([1, 1, 1, 1, -1, -1, 1, 0], dtype=float)
    r = Ratings.build(
        np.r_[d.rater, np.full(8, 100)], np.r_[d.target, extra_t], np.r_[d.score, extra_s],
        101, d.n_targets,
    )  # fmt: skip
    s = st.rater_standing(r, fit_bridging(r))
    assert s.n_decided[100] == 7
    assert s.n_agree[100] == 6
    assert s.agreement[100] == pytest.approx((6 + 1) / (7 + 2))
    assert s.weight[100] == pytest.approx(2 * 7 / 9 - 1)


def test_new_and_contrarian_raters_get_low_weight() -> None:
    d = two_factions(100, 20, 1600, seed=12)
    kinds = d.kind
    bridging_t = np.flatnonzero(kinds == KIND_BRIDGING)
    # rater 100 rates 3 bridging targets (too few), rater 101 rates 5 bridging targets -1
    r = Ratings.build(
        np.r_[d.rater, [100] * 3, [101] * 5], np.r_[d.target, bridging_t[:3], bridging_t[:5]],
        np.r_[d.score, [1.0] * 3, [-1.0] * 5], 102, d.n_targets,
    )  # fmt: skip
    s = st.rater_standing(r, fit_bridging(r))
    assert s.n_decided[100] == 3 and s.weight[100] == st.NEW_RATER_WEIGHT
    assert s.n_decided[101] == 5 and s.n_agree[101] == 0 and s.weight[101] == 0.0
    honest = s.weight[:100]
    assert np.median(honest) > 0.7


def test_eligible_mask_excludes_ratings() -> None:
    d = two_factions(60, 12, 500, seed=13)
    r = Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets)
    fit = fit_bridging(r)
    none = st.rater_standing(r, fit, eligible=np.zeros(len(d.score), dtype=bool))
    assert none.n_decided.sum() == 0
    assert (none.weight == st.NEW_RATER_WEIGHT).all()
    only_first = np.zeros(len(d.score), dtype=bool)
    only_first[d.rater == 0] = True  # caller's order: the mask follows the input order
    s = st.rater_standing(r, fit, eligible=only_first)
    full = st.rater_standing(r, fit)
    assert s.n_decided[0] == full.n_decided[0] > 0
    assert s.n_decided[1:].sum() == 0
