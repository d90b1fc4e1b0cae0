"""Opinion groups, following the Polis method.

Steps (``ratings`` are treated as votes: score > 0 agree, < 0 disagree, == 0 pass):

1. **Matrix.**  Raters x targets, missing entries filled with the target's (column)
   mean over its ratings.  Only targets with at least one rating take part
   (``n_cols`` = their number).
2. **PCA** to ``N_COMPONENTS = 2`` components, over *all* raters (as Polis does).
   After filling with column means and centering, the matrix is sparse (the filled
   cells become exactly 0), so PCA is the truncated SVD of the sparse centered
   matrix: a dense LAPACK SVD when it has at most ``DENSE_SVD_CELLS`` cells, else
   ARPACK (``scipy.sparse.linalg.svds``, start vector all ones).  Sign of each
   component: its largest-magnitude loading (lowest index on ties) is positive.
3. **Sparsity correction** (Polis): each rater's projection is multiplied by
   ``sqrt(n_cols / n_votes)``, so that raters who voted on few targets are not bunched
   up at the centre.
4. **Who is clustered:** raters with at least ``min(MIN_VOTES, n_cols)`` votes
   (``MIN_VOTES = 7``).  Others get label -1 (their coordinates are still returned).
5. **k-means** (scikit-learn ``KMeans(n_clusters=k, n_init=KMEANS_N_INIT,
   random_state=KMEANS_SEED)``) for every k in ``K_RANGE = 2..5`` (k < number of
   distinct points); a k whose solution leaves a group with fewer than
   ``MIN_GROUP_SIZE = 2`` members is rejected (red-dwarf's rule; only if every k is,
   the best of them is kept); the points are clustered sorted by their coordinates, so
   the result does not depend on how raters are numbered; k is the one with the
   highest silhouette (ties: smaller k).  The
   silhouette uses at most ``SILHOUETTE_SAMPLE`` points (a fixed-seed sample) so large
   forums stay fast.  Groups are renumbered by size (largest first; ties by their
   lowest rater index).
6. **Per group and target**: agree / disagree / pass counts and mean score.
7. **Group-aware consensus** per target: ``prod over groups (agree + 0.5) / (votes + 1)``
   (a Jeffreys Beta(1/2, 1/2) prior per group, as red-dwarf).
8. **Representativeness** (Polis "repness") of target t for group g, for direction d
   in {agree, disagree}: with ``p = (n_d + 1) / (votes + 2)`` in the group and
   ``p_rest`` the same for all other clustered raters, ``ratio = p / p_rest``;
   ``z_p`` = Polis' one-proportion test ``2 sqrt(votes + 1) ((n_d + 1)/(votes + 1) - 0.5)``
   and ``z_ratio`` = Polis' two-proportion test of group vs rest.  Each (g, t) keeps the
   direction with the larger ``z_ratio``; it is representative if ``z_p >= Z_90`` and
   ``z_ratio >= Z_90`` (one-sided 90 %), ranked by ``ratio * z_ratio * p * z_p``
   (descending, ties by target index); the top ``REPNESS_TOP = 5`` are returned.

What this does *not* do that Polis does: Polis first k-means the raters into up to 100
*base clusters* and then clusters those, and it holds k back until the same k has won
several consecutive updates (``group-k-buffer``).  See docs/raters.md for the effect of
these differences on real conversations.

Constants: MIN_VOTES = 7, N_COMPONENTS = 2, K_RANGE = (2, 5), KMEANS_SEED = 0,
KMEANS_N_INIT = 10, SILHOUETTE_SAMPLE = 5000, SILHOUETTE_SEED = 0,
DENSE_SVD_CELLS = 4_000_000, REPNESS_TOP = 5, Z_90 = 1.2815515655446004.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from raters.ratings import FloatArray, IntArray, Ratings

if TYPE_CHECKING:  # scipy is imported on first use: 0.2-0.4 s of every server start
    import scipy.sparse as sp

MIN_VOTES = 7
N_COMPONENTS = 2
K_RANGE = (2, 5)
MIN_GROUP_SIZE = 2
KMEANS_SEED = 0
KMEANS_N_INIT = 10
SILHOUETTE_SAMPLE = 5000
SILHOUETTE_SEED = 0
DENSE_SVD_CELLS = 4_000_000
REPNESS_TOP = 5
Z_90 = 1.2815515655446004


@dataclass(frozen=True)
class RepTarget:
    """A target representative of a group.

    Fields: target index; direction "agree" or "disagree"; p (smoothed share of the
    group voting that way), p_rest (same for the other clustered raters), ratio
    (p / p_rest), z_p and z_ratio (Polis' proportion tests), metric (ranking key).
    """

    target: int
    direction: str
    p: float
    p_rest: float
    ratio: float
    z_p: float
    z_ratio: float
    metric: float


@dataclass(frozen=True)
class OpinionGroups:
    """Result of :func:`opinion_groups`.

    Fields:
        labels: int64 (n_raters,), group of each rater, -1 if not clustered.
        coords: float64 (n_raters, 2), sparsity-corrected PCA projection (NaN for raters
            without ratings).
        clustered: bool (n_raters,), rater had enough votes to be clustered.
        k: number of groups (0 if clustering was impossible).
        silhouette: silhouette of the chosen k (NaN if k == 0).
        silhouette_by_k: silhouette for every k tried.
        sizes: int64 (k,), raters per group.
        agree, disagree, passes: int64 (k, n_targets) vote counts per group.
        mean: float64 (k, n_targets), mean score per group (NaN without votes).
        consensus: float64 (n_targets,), group-aware consensus (NaN if k == 0).
        repness: tuple (one per group) of tuples of :class:`RepTarget`, best first.
    """

    labels: IntArray
    coords: FloatArray
    clustered: np.ndarray
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]
    sizes: IntArray
    agree: IntArray
    disagree: IntArray
    passes: IntArray
    mean: FloatArray
    consensus: FloatArray
    repness: tuple[tuple[RepTarget, ...], ...]


def prop_test(successes: np.ndarray, n: np.ndarray) -> FloatArray:
    """Polis' one-proportion z statistic ``2 sqrt(n + 1) ((successes + 1)/(n + 1) - 0.5)``.

    Inputs: arrays of success counts and trial counts.  Output: float64 array.
    """
    s = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    return np.asarray(2.0 * np.sqrt(m + 1.0) * ((s + 1.0) / (m + 1.0) - 0.5))


def two_prop_test(
    succ_in: np.ndarray, n_in: np.ndarray, succ_out: np.ndarray, n_out: np.ndarray
) -> FloatArray:
    """Polis' two-proportion z statistic (every count incremented by one).

    With ``a = succ_in + 1``, ``b = succ_out + 1``, ``m = n_in + 1``, ``o = n_out + 1``:
    ``(a/m - b/o) / sqrt(pi (1 - pi) (1/m + 1/o))`` with ``pi = (a + b) / (m + o)``;
    0 where ``pi`` is 0 or 1.  Output: float64 array.
    """
    a = np.asarray(succ_in, dtype=np.float64) + 1.0
    b = np.asarray(succ_out, dtype=np.float64) + 1.0
    m = np.asarray(n_in, dtype=np.float64) + 1.0
    o = np.asarray(n_out, dtype=np.float64) + 1.0
    pi = (a + b) / (m + o)
    den = np.sqrt(pi * (1.0 - pi) * (1.0 / m + 1.0 / o))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, (a / m - b / o) / np.where(den > 0, den, 1.0), 0.0)
    return np.asarray(z)


def _pca(x: sp.csr_matrix) -> FloatArray:
    """Top-N_COMPONENTS right singular vectors (n_cols x N_COMPONENTS), sign-fixed."""
    from scipy.sparse.linalg import svds

    n_rows, n_cols = x.shape
    k = min(N_COMPONENTS, n_cols, n_rows)
    if n_rows * n_cols <= DENSE_SVD_CELLS or k >= min(n_rows, n_cols):
        _, _, vt = np.linalg.svd(x.toarray(), full_matrices=False)
        v = vt[:k].T
    else:
        _, sv, vt = svds(x, k=k, v0=np.ones(min(n_rows, n_cols)), solver="arpack")
        v = vt[np.argsort(-sv, kind="stable")].T
    v = np.array(v, dtype=np.float64)
    for j in range(v.shape[1]):
        if v[int(np.argmax(np.abs(v[:, j]))), j] < 0:
            v[:, j] = -v[:, j]
    if v.shape[1] < N_COMPONENTS:
        v = np.hstack([v, np.zeros((n_cols, N_COMPONENTS - v.shape[1]))])
    return v


def _repness(
    agree: IntArray, disagree: IntArray, votes: IntArray
) -> tuple[tuple[RepTarget, ...], ...]:
    k, _ = agree.shape
    tot_a, tot_d, tot_v = agree.sum(0), disagree.sum(0), votes.sum(0)
    out: list[tuple[RepTarget, ...]] = []
    for g in range(k):
        n_in = votes[g]
        n_out = tot_v - n_in
        best: list[tuple[float, int, RepTarget]] = []
        cand = []
        for direction, cnt, tot in (("agree", agree[g], tot_a), ("disagree", disagree[g], tot_d)):
            p = (cnt + 1.0) / (n_in + 2.0)
            p_rest = (tot - cnt + 1.0) / (n_out + 2.0)
            cand.append(
                (
                    direction,
                    p,
                    p_rest,
                    prop_test(cnt, n_in),
                    two_prop_test(cnt, n_in, tot - cnt, n_out),
                )
            )
        (da, pa, pra, zpa, zra), (dd, pd, prd, zpd, zrd) = cand
        use_agree = zra >= zrd
        p = np.where(use_agree, pa, pd)
        p_rest = np.where(use_agree, pra, prd)
        z_p = np.where(use_agree, zpa, zpd)
        z_r = np.where(use_agree, zra, zrd)
        ratio = p / p_rest
        metric = ratio * z_r * p * z_p
        ok = (z_p >= Z_90) & (z_r >= Z_90) & (n_in > 0)
        for t in np.flatnonzero(ok):
            ti = int(t)
            rep = RepTarget(
                target=ti,
                direction=da if bool(use_agree[ti]) else dd,
                p=float(p[ti]),
                p_rest=float(p_rest[ti]),
                ratio=float(ratio[ti]),
                z_p=float(z_p[ti]),
                z_ratio=float(z_r[ti]),
                metric=float(metric[ti]),
            )
            best.append((-rep.metric, ti, rep))
        best.sort(key=lambda x: (x[0], x[1]))
        out.append(tuple(x[2] for x in best[:REPNESS_TOP]))
    return tuple(out)


def _choose_k(points: FloatArray) -> tuple[int, float, dict[int, float], IntArray]:
    # scikit-learn is imported on first use: it costs seconds at server start.
    from threadpoolctl import threadpool_limits

    # One thread: the inputs are small (participants x 2), and OpenMP threads only
    # contend with everything else on a busy machine (0.27 s against 1.9 s per fit
    # of 16 raters at load 11; the chunked sums, hence the labels, do not depend on it).
    # k-means++ seeding visits the points in their order: clustering them sorted by their
    # coordinates makes the groups independent of how the raters are numbered.
    order = np.lexsort(points.T[::-1])
    with threadpool_limits(limits=1):
        k, score, scores, labels = _choose_k_in_one_thread(points[order])
    out = np.empty_like(labels)
    out[order] = labels
    return k, score, scores, out


def _choose_k_in_one_thread(points: FloatArray) -> tuple[int, float, dict[int, float], IntArray]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n_distinct = len(np.unique(points, axis=0))
    scores: dict[int, float] = {}
    best: tuple[int, float, IntArray] | None = None
    fallback: tuple[int, float, IntArray] | None = None
    for k in range(K_RANGE[0], K_RANGE[1] + 1):
        # k groups need more than k distinct positions, except that two distinct
        # positions make two groups (two camps that each vote as one).
        if k > n_distinct or (k == n_distinct and k > K_RANGE[0]) or k >= len(points):
            break
        km = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=KMEANS_SEED).fit(points)
        labels = np.asarray(km.labels_, dtype=np.int64)
        if len(np.unique(labels)) < k:
            continue
        sample = SILHOUETTE_SAMPLE if len(points) > SILHOUETTE_SAMPLE else None
        score = float(
            silhouette_score(points, labels, sample_size=sample, random_state=SILHOUETTE_SEED)
        )
        scores[k] = score
        if np.bincount(labels, minlength=k).min() < MIN_GROUP_SIZE:
            # red-dwarf's rule: a k that leaves a one-member group is rejected (used only
            # if every k does)
            if fallback is None or score > fallback[1]:
                fallback = (k, score, labels)
            continue
        if best is None or score > best[1]:
            best = (k, score, labels)
    best = best if best is not None else fallback
    if best is None:
        return 0, float("nan"), scores, np.zeros(len(points), dtype=np.int64)
    return best[0], best[1], scores, best[2]


def opinion_groups(ratings: Ratings) -> OpinionGroups:
    """Polis-style opinion groups of the raters (see module doc for every step).

    Input: canonical :class:`Ratings` (scores in [-1, 1]; votes are +1 / -1 / 0).
    Output: :class:`OpinionGroups`.  Deterministic: fixed seeds, canonical input order,
    canonical group numbering.
    """
    nr, nt = ratings.n_raters, ratings.n_targets
    r, t, s = ratings.rater, ratings.target, ratings.score
    n_votes = np.bincount(r, minlength=nr).astype(np.int64)
    col_n = np.bincount(t, minlength=nt)
    col_sum = np.bincount(t, weights=s, minlength=nt)
    col_mean = np.divide(col_sum, col_n, out=np.zeros(nt), where=col_n > 0)
    n_cols = int((col_n > 0).sum())

    coords = np.full((nr, N_COMPONENTS), np.nan)
    labels = np.full(nr, -1, dtype=np.int64)
    clustered = n_votes >= min(MIN_VOTES, max(n_cols, 1))
    clustered &= n_votes > 0
    k, sil = 0, float("nan")
    sil_by_k: dict[int, float] = {}
    if n_cols >= 2 and nr >= 2:
        import scipy.sparse as sp

        x = sp.csr_matrix((s - col_mean[t], (r, t)), shape=(nr, nt))
        v = _pca(x)
        proj = np.asarray(x @ v)
        voted = n_votes > 0
        proj[voted] *= np.sqrt(n_cols / n_votes[voted])[:, None]
        coords[voted] = proj[voted]
        idx = np.flatnonzero(clustered)
        if len(idx) >= 3:
            k, sil, sil_by_k, lab = _choose_k(proj[idx])
            if k:
                sizes0 = np.bincount(lab, minlength=k)
                first = np.array([idx[lab == g].min() for g in range(k)])
                order = np.lexsort((first, -sizes0))
                remap = np.empty(k, dtype=np.int64)
                remap[order] = np.arange(k)
                labels[idx] = remap[lab]

    g_of = labels[r]
    in_g = g_of >= 0
    flat = g_of[in_g] * nt + t[in_g]
    sv = s[in_g]
    size = k * nt

    def count(mask: np.ndarray) -> IntArray:
        return np.bincount(flat[mask], minlength=size).reshape(k, nt).astype(np.int64)

    agree, disagree, passes = count(sv > 0), count(sv < 0), count(sv == 0)
    votes = agree + disagree + passes
    gsum = np.bincount(flat, weights=sv, minlength=size).reshape(k, nt)
    gmean = np.divide(gsum, votes, out=np.full((k, nt), np.nan), where=votes > 0)
    if k:
        consensus = np.prod((agree + 0.5) / (votes + 1.0), axis=0)  # Jeffreys prior
        rep = _repness(agree, disagree, votes)
    else:
        consensus = np.full(nt, np.nan)
        rep = ()
    return OpinionGroups(
        labels=labels,
        coords=coords,
        clustered=clustered,
        k=k,
        silhouette=sil,
        silhouette_by_k=sil_by_k,
        sizes=np.bincount(labels[labels >= 0], minlength=k).astype(np.int64),
        agree=agree,
        disagree=disagree,
        passes=passes,
        mean=gmean,
        consensus=consensus,
        repness=rep,
    )
