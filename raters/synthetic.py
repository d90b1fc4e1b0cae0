"""Deterministic synthetic rating data with two opinion factions (tests and benchmark).

Pure functions: the output depends only on the arguments (NumPy ``default_rng(seed)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raters.ratings import FloatArray, IntArray

KIND_BRIDGING = 0
KIND_PARTISAN_A = 1
KIND_PARTISAN_B = 2
KIND_REJECTED = 3

#: Mean score given by (faction A, faction B) to each kind of target.
KIND_MEANS: dict[int, tuple[float, float]] = {
    KIND_BRIDGING: (0.7, 0.7),
    KIND_PARTISAN_A: (0.8, -0.8),
    KIND_PARTISAN_B: (-0.8, 0.8),
    KIND_REJECTED: (-0.7, -0.7),
}


@dataclass(frozen=True)
class SyntheticRatings:
    """Synthetic ratings and the ground truth that generated them.

    Fields:
        rater, target: int64 arrays (one entry per rating, no duplicate pairs).
        score: float64 array, in [-1, 1].
        n_raters, n_targets: sizes.
        faction: int64 (n_raters,), 0 (side A) or 1 (side B).
        kind: int64 (n_targets,), one of the KIND_* constants.
    """

    rater: IntArray
    target: IntArray
    score: FloatArray
    n_raters: int
    n_targets: int
    faction: IntArray
    kind: IntArray


def two_factions(
    n_raters: int,
    n_targets: int,
    n_ratings: int,
    *,
    seed: int = 0,
    noise: float = 0.3,
    kind_share: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25),
    bridging_means: FloatArray | None = None,
) -> SyntheticRatings:
    """Random sparse ratings from two equal factions.

    Inputs:
        n_raters, n_targets: sizes; raters alternate between faction 0 and 1.
        n_ratings: number of distinct (rater, target) pairs drawn uniformly without
            replacement (must be <= n_raters * n_targets).
        seed: NumPy generator seed.
        noise: standard deviation of the Gaussian noise added to each mean score
            (scores are then clipped to [-1, 1]).
        kind_share: share of targets of each kind (bridging, partisan A, partisan B,
            rejected); kinds are assigned in blocks in that order.
        bridging_means: optional (n_bridging,) override of the common mean score of
            each bridging target (lets tests build a ranking of bridging targets).
    Output: :class:`SyntheticRatings`.
    """
    rng = np.random.default_rng(seed)
    faction = (np.arange(n_raters) % 2).astype(np.int64)
    counts = np.floor(np.asarray(kind_share) * n_targets).astype(np.int64)
    counts[0] += n_targets - counts.sum()
    kind = np.repeat(np.arange(4, dtype=np.int64), counts)
    means = np.array([KIND_MEANS[int(k)] for k in kind], dtype=np.float64).reshape(-1, 2)
    if bridging_means is not None:
        bm = np.asarray(bridging_means, dtype=np.float64)
        if len(bm) != counts[0]:
            raise ValueError("bridging_means must have one entry per bridging target")
        means[: counts[0], 0] = bm
        means[: counts[0], 1] = bm
    flat = rng.choice(n_raters * n_targets, size=n_ratings, replace=False)
    flat.sort()
    rater = (flat // n_targets).astype(np.int64)
    target = (flat % n_targets).astype(np.int64)
    base = means[target, faction[rater]]
    score = np.clip(base + rng.normal(0.0, noise, n_ratings), -1.0, 1.0)
    return SyntheticRatings(rater, target, score, n_raters, n_targets, faction, kind)
