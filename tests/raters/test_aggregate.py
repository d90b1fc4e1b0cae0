"""Cheap aggregates, input validation and latest-rating selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from raters.aggregate import aggregate_criteria, aggregate_targets, shrunk_mean
from raters.ratings import Ratings, latest_ratings


def _ratings() -> Ratings:
    # target 0: 1.0, 0.5, -0.5 ; target 1: -1.0 ; target 2: none
    return Ratings.build([0, 1, 2, 0], [0, 0, 0, 1], [1.0, 0.5, -0.5, -1.0], 3, 3)


def test_counts_means_and_global_mean() -> None:
    agg = aggregate_targets(_ratings())
    assert agg.count.tolist() == [3, 1, 0]
    assert agg.mean[0] == pytest.approx(1.0 / 3.0)
    assert agg.mean[1] == -1.0
    assert math.isnan(agg.mean[2])
    assert agg.global_mean == pytest.approx(0.0)


def test_shrunk_mean_formula_by_hand() -> None:
    agg = aggregate_targets(_ratings(), prior_strength=5.0)
    g = agg.global_mean
    assert agg.shrunk_mean[0] == pytest.approx((1.0 + 5 * g) / (3 + 5))
    assert agg.shrunk_mean[1] == pytest.approx((-1.0 + 5 * g) / (1 + 5))
    assert agg.shrunk_mean[2] == pytest.approx(g)
    # halfway between own mean and prior when count == m
    assert shrunk_mean([2.0], [4], 0.0, 4.0)[0] == pytest.approx(0.25)
    assert shrunk_mean([3.0], [3], 0.5, 1.0)[0] == pytest.approx((3.0 + 0.5) / 4.0)


def test_shrunk_mean_rejects_non_positive_prior() -> None:
    with pytest.raises(ValueError):
        shrunk_mean([1.0], [1], 0.0, 0.0)


def test_global_mean_of_empty_input_is_zero() -> None:
    agg = aggregate_targets(Ratings.build([], [], [], 2, 2))
    assert agg.global_mean == 0.0
    assert agg.count.tolist() == [0, 0]
    assert agg.shrunk_mean.tolist() == [0.0, 0.0]


def test_criteria_counts_and_means() -> None:
    crit = aggregate_criteria(
        target=[0, 0, 0, 1], criterion=[0, 0, 1, 1], score=[1.0, 0.0, -0.5, 0.25],
        n_targets=2, n_criteria=2,
    )  # fmt: skip
    assert crit.count.tolist() == [[2, 1], [0, 1]]
    assert crit.mean[0, 0] == pytest.approx(0.5)
    assert crit.mean[0, 1] == pytest.approx(-0.5)
    assert math.isnan(crit.mean[1, 0])
    assert crit.mean[1, 1] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("rater", "target", "score", "message"),
    [
        ([0, 0], [1, 1], [0.1, 0.2], "duplicate"),
        ([0], [5], [0.1], "target index"),
        ([-1], [0], [0.1], "rater index"),
        ([0], [0], [1.5], "within"),
        ([0], [0], [float("nan")], "within"),
        ([0, 1], [0], [0.1], "same length"),
    ],
)
def test_ratings_validation(
    rater: list[int], target: list[int], score: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Ratings.build(rater, target, score, 2, 2)


def test_ratings_are_canonical_and_keep_order() -> None:
    r = Ratings.build([1, 0, 1], [1, 1, 0], [0.1, 0.2, 0.3], 2, 2)
    assert list(zip(r.target.tolist(), r.rater.tolist(), strict=True)) == [(0, 1), (1, 0), (1, 1)]
    assert r.score.tolist() == [0.3, 0.2, 0.1]
    assert np.array_equal(np.array([0.1, 0.2, 0.3])[r.order], r.score)


def test_latest_ratings_keeps_greatest_seq_then_last_position() -> None:
    rater = [0, 0, 1, 0, 1]
    target = [0, 0, 0, 1, 0]
    seq = [5, 3, 1, 2, 1]
    # (0,0): seq 5 at index 0 wins over seq 3; (1,0): tie on seq 1, later index 4 wins
    assert latest_ratings(rater, target, seq).tolist() == [0, 3, 4]
