"""Sybil scenarios of issue 10: fresh keys push targets up and rivals down.

The forum gives the raters their ages on its rater clock (forum/scores/ledger.py):
honest raters are old, fresh keys are 0.  Harm must grow smoothly and stay small:
no cliff, standing never switched off, protected means barely moved.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from raters.bridging import HYSTERESIS, POSITIVE_STATUSES, SUPPORT_LEVEL
from raters.pipeline import ScoreResult, compute_scores
from raters.ratings import Ratings
from raters.standing import ESTABLISH_AGE, NEWCOMER_BUDGET
from raters.synthetic import KIND_PARTISAN_A, KIND_REJECTED, SyntheticRatings, two_factions

N_HONEST = 200
N_SYBIL = 200


def _honest() -> SyntheticRatings:
    # 10 bridging targets with distinct common means, so they have a definite ranking.
    return two_factions(
        N_HONEST, 40, N_HONEST * 20, seed=3, bridging_means=np.linspace(0.5, 0.95, 10)
    )


def _positive(result: ScoreResult) -> set[int]:
    return {i for i, s in enumerate(result.bridging.status) if s in POSITIVE_STATUSES}


def _ages(n_old: int, n_new: int) -> np.ndarray:
    return np.r_[np.full(n_old, 10 * ESTABLISH_AGE), np.zeros(n_new)].astype(np.int64)


@pytest.mark.parametrize("attacked_kind", [KIND_PARTISAN_A, KIND_REJECTED])
@pytest.mark.parametrize("rival_rank", [0, -1])
def test_sybils_cannot_promote_or_demote(attacked_kind: int, rival_rank: int) -> None:
    d = _honest()
    honest = compute_scores(Ratings.build(d.rater, d.target, d.score, N_HONEST, d.n_targets), age=_ages(N_HONEST, 0))
    fit = honest.bridging
    bridging_ids = sorted((i for i, s in enumerate(fit.status) if s == "bridging"), key=lambda i: -fit.target_intercept[i])
    assert len(bridging_ids) == 10  # the honest forum: all bridging targets found
    attacked = int(np.flatnonzero(d.kind == attacked_kind)[0])
    rival = bridging_ids[rival_rank]  # an honest bridging target pushed down
    assert honest.bridging.status[attacked] not in POSITIVE_STATUSES

    sybils = np.arange(N_HONEST, N_HONEST + N_SYBIL)
    rater = np.r_[d.rater, np.repeat(sybils, 2)]
    target = np.r_[d.target, np.tile([attacked, rival], N_SYBIL)]
    score = np.r_[d.score, np.tile([1.0, -1.0], N_SYBIL)]
    attacked_ratings = Ratings.build(rater, target, score, N_HONEST + N_SYBIL, d.n_targets)
    res = compute_scores(attacked_ratings, age=_ages(N_HONEST, N_SYBIL))
    agg, prot = res.aggregates.targets, res.protected
    assert prot is not None and honest.protected is not None
    # The plain mean *is* moved by the sybils: that is why it is not what sorts.
    assert agg.mean[attacked] > honest.aggregates.targets.mean[attacked] + 0.3
    # The protected mean is not: 200 keys weigh NEWCOMER_BUDGET raters on a target.
    assert abs(prot.mean[attacked] - honest.protected.mean[attacked]) < 0.05
    assert abs(prot.shrunk_mean[rival] - honest.protected.shrunk_mean[rival]) < 0.05
    assert res.standing_applied
    weights = res.weights
    assert weights is not None
    by_sybils = attacked_ratings.rater >= N_HONEST
    for t in (attacked, rival):
        assert weights[by_sybils & (attacked_ratings.target == t)].sum() <= NEWCOMER_BUDGET + 1e-9
    assert res.bridging.status[attacked] not in POSITIVE_STATUSES
    assert abs(res.bridging.target_intercept[attacked] - fit.target_intercept[attacked]) < 0.05
    # no honest positive status is lost, unless it sat within the hysteresis margin
    lost = _positive(honest) - _positive(res)
    assert all(fit.side_low[i] < SUPPORT_LEVEL + HYSTERESIS for i in lost)
    assert _positive(res) <= _positive(honest)


def _camps(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The issue's forum: 40 raters in two camps, 10 consensus and 10 partisan proposals."""
    rng = np.random.default_rng(seed)
    camp = np.arange(40) % 2
    means = np.r_[np.full(10, 0.65), np.where(np.arange(10) % 2, 0.7, -0.7)]
    rater = np.repeat(np.arange(40), 20)
    target = np.tile(np.arange(20), 40)
    sign = np.where(camp[rater] == 0, 1.0, -1.0)
    mean = np.where(target < 10, means[target], means[target] * sign)
    score = np.clip(mean + rng.normal(0, 0.25, len(rater)), -1, 1)
    return rater, target, score


def test_no_cliff_as_the_crowd_grows() -> None:
    """The issue's cliff: 55 keys rating one target -1 used to switch standing off and
    drop every bridging target.  Now the harm grows smoothly and stays small."""
    rater, target, score = _camps()
    base = compute_scores(Ratings.build(rater, target, score, 40, 20), age=_ages(40, 0))
    assert base.standing_applied
    positive = _positive(base)
    assert positive == set(range(10))
    moves = []
    for k in (10, 50, 55, 60, 100, 500):
        r = np.r_[rater, np.arange(40, 40 + k)]
        t = np.r_[target, np.zeros(k, np.int64)]
        s = np.r_[score, -np.ones(k)]
        res = compute_scores(Ratings.build(r, t, s, 40 + k, 20), age=_ages(40, k))
        assert res.standing_applied
        assert _positive(res) == positive
        assert res.protected is not None and base.protected is not None
        moves.append(float(abs(res.protected.shrunk_mean[0] - base.protected.shrunk_mean[0])))
        # an unrelated partisan target does not move
        assert abs(res.bridging.side_low[15] - base.bridging.side_low[15]) < 0.05
    assert max(moves) < 0.1
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(moves))  # smooth, saturating
