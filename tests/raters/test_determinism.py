"""Same input -> identical output; input order does not matter."""

from __future__ import annotations

import json

import numpy as np

from raters.aggregate import CriterionScores
from raters.pipeline import compute_scores
from raters.ratings import Ratings
from raters.synthetic import SyntheticRatings, two_factions


def _run(d: SyntheticRatings, perm: np.ndarray) -> str:
    crit = CriterionScores(
        target=d.target[perm], criterion=np.arange(len(perm)) % 3,
        score=np.round(d.score[perm], 1), n_criteria=3,
    )  # fmt: skip
    r = Ratings.build(d.rater[perm], d.target[perm], d.score[perm], d.n_raters, d.n_targets)
    return json.dumps(compute_scores(r, crit).to_dict(), sort_keys=True)


def test_same_input_twice_is_identical() -> None:
    d = two_factions(150, 30, 2500, seed=8)
    ident = np.arange(len(d.score))
    assert _run(d, ident) == _run(d, ident)


def test_shuffled_input_gives_identical_output() -> None:
    d = two_factions(150, 30, 2500, seed=8)
    n = len(d.score)
    base = json.loads(_run(d, np.arange(n)))
    # criteria ride along with their ratings, so permute consistently
    perm = np.random.default_rng(99).permutation(n)
    crit_same = CriterionScores(d.target, np.arange(n) % 3, np.round(d.score, 1), 3)
    r = Ratings.build(d.rater[perm], d.target[perm], d.score[perm], d.n_raters, d.n_targets)
    shuffled_crit = CriterionScores(
        np.asarray(crit_same.target)[perm], (np.arange(n) % 3)[perm],
        np.round(d.score, 1)[perm], 3,
    )  # fmt: skip
    out = json.loads(json.dumps(compute_scores(r, shuffled_crit).to_dict(), sort_keys=True))
    assert out == base
    assert base["groups"]["k"] >= 2
