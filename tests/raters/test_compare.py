"""Comparison of published and recomputed results (forum verify)."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from raters import bridging
from raters.compare import AGGREGATE_TOL, FIT_TOL, compare_results, results_match
from raters.pipeline import ScoreResult, compute_aggregates, compute_scores
from raters.ratings import Ratings
from raters.synthetic import two_factions


@pytest.fixture(scope="module")
def result() -> ScoreResult:
    d = two_factions(120, 24, 1500, seed=21)
    return compute_scores(Ratings.build(d.rater, d.target, d.score, d.n_raters, d.n_targets))


def _roundtrip(result: ScoreResult, include_raters: bool = True) -> dict[str, Any]:
    return json.loads(json.dumps(result.to_dict(include_raters)))


def test_identical_results_match(result: ScoreResult) -> None:
    assert compare_results(result, result) == []
    assert results_match(_roundtrip(result), result)
    assert results_match(_roundtrip(result, include_raters=False), result)


def test_aggregate_mean_is_near_exact(result: ScoreResult) -> None:
    d = _roundtrip(result)
    d["aggregates"]["mean"][3] += AGGREGATE_TOL / 2
    assert results_match(d, result)
    d["aggregates"]["mean"][3] += 10 * AGGREGATE_TOL
    diffs = compare_results(d, result)
    assert [x.path for x in diffs] == ["aggregates.mean[3]"]
    d = _roundtrip(result)
    d["aggregates"]["count"][0] += 1
    assert [x.path for x in compare_results(d, result)] == ["aggregates.count"]


def test_fitted_values_within_tolerance(result: ScoreResult) -> None:
    d = _roundtrip(result)
    i = int(np.argmin(np.abs(np.abs(result.bridging.target_intercept) - 0.1)))
    d["bridging"]["target_intercept"][i] += FIT_TOL / 2
    assert results_match(d, result)
    d["bridging"]["target_intercept"][i] += FIT_TOL
    assert [x.path for x in compare_results(d, result)] == [f"bridging.target_intercept[{i}]"]


def test_factor_sign_flip_is_not_a_difference(result: ScoreResult) -> None:
    d = _roundtrip(result)
    for key in ("target_factor", "rater_factor"):
        d["bridging"][key] = [-x for x in d["bridging"][key]]
    assert results_match(d, result)
    d["bridging"]["target_factor"][0] *= -1  # flip one target only: a real difference
    assert not results_match(d, result)


def test_status_difference_tolerated_only_near_threshold(result: ScoreResult) -> None:
    d = _roundtrip(result)
    fit = result.bridging
    levels = (bridging.SUPPORT_LEVEL, 0.0, -bridging.SPLIT_LEVEL, bridging.REJECT_LEVEL, bridging.SPLIT_LEVEL)
    far = next(
        i for i in range(len(fit.status))
        if min(abs(x - lv) for x in (fit.side_low[i], fit.side_high[i], fit.side_mid[i]) for lv in levels) > 0.1
        and abs(fit.side_support[i] - bridging.SIDE_MIN) > 0.1
    )  # fmt: skip
    d["bridging"]["status"][far] = "insufficient"
    assert [x.path for x in compare_results(d, result)] == [f"bridging.status[{far}]"]
    d = _roundtrip(result)
    d["bridging"]["side_low"][far] = bridging.SUPPORT_LEVEL + FIT_TOL / 2
    d["bridging"]["status"][far] = "insufficient"
    other = _roundtrip(result)
    other["bridging"]["side_low"][far] = bridging.SUPPORT_LEVEL - FIT_TOL / 2
    diffs = compare_results(d, other)
    assert all(not x.path.startswith("bridging.status") for x in diffs)


def test_group_labels_compared_by_ari(result: ScoreResult) -> None:
    d = _roundtrip(result)
    labels = d["groups"]["labels"]
    d["groups"]["labels"] = [1 - x if x >= 0 else x for x in labels]  # renamed groups
    assert results_match(d, result)
    swapped = copy.deepcopy(d)
    ix = [i for i, x in enumerate(labels) if x >= 0][:20]
    for i in ix:
        swapped["groups"]["labels"][i] = 1 - swapped["groups"]["labels"][i]
    assert any(x.path == "groups.labels.ari" for x in compare_results(swapped, result))


def test_version_mismatch_is_reported(result: ScoreResult) -> None:
    d = _roundtrip(result)
    d["version"] = "0.9"
    assert [x.path for x in compare_results(d, result)] == ["version"]


def test_cheap_aggregates_compare() -> None:
    r = Ratings.build([0, 1], [0, 0], [0.5, 1.0], 2, 1)
    a = compute_aggregates(r)
    assert results_match(a.to_dict(), a)
    b = compute_aggregates(Ratings.build([0, 1], [0, 0], [0.5, 0.9], 2, 1))
    assert {x.path for x in compare_results(a, b)} == {
        "mean[0]", "shrunk_mean[0]", "global_mean",
    }  # fmt: skip
