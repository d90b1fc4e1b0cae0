"""The sybil scenario of the issue: 200 fresh keys push one target up and a rival down."""

from __future__ import annotations

import numpy as np
import pytest

from raters.pipeline import ScoreResult, compute_scores
from raters.ratings import Ratings
from raters.synthetic import KIND_PARTISAN_A, KIND_REJECTED, SyntheticRatings, two_factions

N_HONEST = 200
N_SYBIL = 200


def _honest() -> SyntheticRatings:
    # 10 bridging targets with distinct common means, so they have a definite ranking.
    return two_factions(
        N_HONEST, 40, N_HONEST * 20, seed=3, bridging_means=np.linspace(0.5, 0.95, 10)
    )


def _bridging_order(result: ScoreResult) -> list[int]:
    fit = result.bridging
    ids = [i for i, s in enumerate(fit.status) if s == "bridging"]
    return sorted(ids, key=lambda i: -fit.target_intercept[i])


@pytest.mark.parametrize("attacked_kind", [KIND_PARTISAN_A, KIND_REJECTED])
@pytest.mark.parametrize("rival_rank", [0, -1])
def test_sybils_cannot_make_a_target_bridging(attacked_kind: int, rival_rank: int) -> None:
    d = _honest()
    honest = compute_scores(Ratings.build(d.rater, d.target, d.score, N_HONEST, d.n_targets))
    order = _bridging_order(honest)
    assert len(order) == 10  # the honest forum: all bridging targets found
    attacked = int(np.flatnonzero(d.kind == attacked_kind)[0])
    rival = order[rival_rank]  # an honest bridging target pushed down
    assert honest.bridging.status[attacked] != "bridging"

    sybils = np.arange(N_HONEST, N_HONEST + N_SYBIL)
    rater = np.r_[d.rater, np.repeat(sybils, 2)]
    target = np.r_[d.target, np.tile([attacked, rival], N_SYBIL)]
    score = np.r_[d.score, np.tile([1.0, -1.0], N_SYBIL)]
    res = compute_scores(Ratings.build(rater, target, score, N_HONEST + N_SYBIL, d.n_targets))

    # The plain mean *is* moved by the sybils (that is why it is not the ranking score).
    assert res.aggregates.targets.mean[attacked] > honest.aggregates.targets.mean[attacked] + 0.3
    assert res.standing_applied
    assert (res.standing.weight[sybils] == 0.0).all()
    assert res.bridging.status[attacked] != "bridging"
    assert _bridging_order(res) == order
    # and the attacked target's bridging score barely moved
    assert (
        abs(res.bridging.target_intercept[attacked] - honest.bridging.target_intercept[attacked])
        < 0.05
    )
