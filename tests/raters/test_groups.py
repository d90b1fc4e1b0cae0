"""Opinion groups (Polis method) on small hand-checkable and synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from raters import groups as G
from raters.ratings import Ratings
from raters.synthetic import two_factions


def _two_camps(n: int = 40, n_targets: int = 12, seed: int = 0) -> tuple[Ratings, np.ndarray]:
    """Camp 0 agrees with even targets and disagrees with odd ones; camp 1 the reverse;
    target 0 is agreed by everyone."""
    rng = np.random.default_rng(seed)
    camp = np.arange(n) % 2
    rr, tt, ss = [], [], []
    for u in range(n):
        for t in range(n_targets):
            if rng.random() < 0.15 and t > 0:
                continue  # some missing votes
            v = 1.0 if (t % 2 == camp[u]) else -1.0
            if t == 0:
                v = 1.0
            elif rng.random() < 0.1:
                v = 0.0
            rr.append(u)
            tt.append(t)
            ss.append(v)
    return Ratings.build(rr, tt, ss, n, n_targets), camp


def test_two_camps_are_recovered() -> None:
    r, camp = _two_camps()
    g = G.opinion_groups(r)
    assert g.k == 2
    assert adjusted_rand_score(camp, g.labels) == 1.0
    assert g.silhouette == max(g.silhouette_by_k.values())
    assert g.sizes.sum() == 40 and g.sizes[0] >= g.sizes[1]


def test_counts_consensus_and_means_by_hand() -> None:
    r, _ = _two_camps()
    g = G.opinion_groups(r)
    lab = g.labels
    for k in range(g.k):
        members = lab[r.rater] == k
        for t in (0, 1, 2):
            sel = members & (r.target == t)
            s = r.score[sel]
            assert g.agree[k, t] == (s > 0).sum()
            assert g.disagree[k, t] == (s < 0).sum()
            assert g.passes[k, t] == (s == 0).sum()
            assert g.mean[k, t] == pytest.approx(s.mean())
    votes = g.agree + g.disagree + g.passes
    t = 0
    expected = np.prod([(g.agree[k, t] + 0.5) / (votes[k, t] + 1) for k in range(g.k)])  # Jeffreys
    assert g.consensus[t] == pytest.approx(expected)
    # everyone agrees on target 0, camps split on the others: 0 is the consensus target
    assert int(np.argmax(g.consensus)) == 0


def test_consensus_formula_exact_small_case() -> None:
    # groups of 2 x 3 raters; target 0: group A 3 agree, group B 1 agree + 2 disagree.
    votes = {0: [1, 1, 1, -1, -1, 1], 1: [1, 1, 1, -1, -1, -1], 2: [-1, -1, -1, 1, 1, 1]}
    rr, tt, ss = [], [], []
    for t, vs in votes.items():
        for u, v in enumerate(vs):
            rr.append(u)
            tt.append(t)
            ss.append(float(v))
    g = G.opinion_groups(Ratings.build(rr, tt, ss, 6, 3))
    assert g.k == 2
    a = g.labels[0]
    other = 1 - a
    assert set(g.labels[:3]) == {a} and set(g.labels[3:]) == {other}
    # Jeffreys prior: (agree + 1/2) / (votes + 1) per group
    assert g.consensus[0] == pytest.approx((3 + 0.5) / (3 + 1) * (1 + 0.5) / (3 + 1))
    assert g.consensus[1] == pytest.approx((3 + 0.5) / (3 + 1) * (0 + 0.5) / (3 + 1))


def test_polis_statistics() -> None:
    assert G.prop_test(np.array(10), np.array(10))[()] == pytest.approx(
        2 * np.sqrt(11) * (11 / 11 - 0.5)
    )
    z = G.two_prop_test(np.array(9), np.array(10), np.array(1), np.array(10))
    pi1, pi2, pi = 10 / 11, 2 / 11, 12 / 22
    assert z[()] == pytest.approx((pi1 - pi2) / np.sqrt(pi * (1 - pi) * (2 / 11)))


def test_repness_picks_the_camp_targets() -> None:
    r, camp = _two_camps(n=60, n_targets=10, seed=1)
    g = G.opinion_groups(r)
    for k in range(g.k):
        reps = g.repness[k]
        assert 0 < len(reps) <= G.REPNESS_TOP
        assert all(rep.target != 0 for rep in reps)  # the consensus target is not representative
        metrics = [rep.metric for rep in reps]
        assert metrics == sorted(metrics, reverse=True)
        camp_of_k = int(np.bincount(camp[g.labels == k]).argmax())
        for rep in reps:
            camp_agrees = rep.target % 2 == camp_of_k
            assert rep.direction == ("agree" if camp_agrees else "disagree")
            assert rep.p > rep.p_rest and rep.z_ratio >= G.Z_90


def test_raters_with_few_votes_are_not_clustered() -> None:
    r, _ = _two_camps(n=20, n_targets=12)
    extra = Ratings.build(
        np.r_[r.rater, [20] * 6], np.r_[r.target, np.arange(6)], np.r_[r.score, [1.0] * 6],
        21, 12,
    )  # fmt: skip
    g = G.opinion_groups(extra)
    assert g.labels[20] == -1 and not g.clustered[20]
    assert np.isfinite(g.coords[20]).all()
    assert (g.labels[:20] >= 0).all()


def test_sparsity_correction() -> None:
    # With the correction, a rater with half the votes of an identical rater is projected
    # at sqrt(2) times the uncorrected projection.
    r, _ = _two_camps(n=30, n_targets=10)
    g = G.opinion_groups(r)
    n_votes = np.bincount(r.rater, minlength=30)
    col_n = np.bincount(r.target, minlength=10)
    col_mean = np.bincount(r.target, weights=r.score, minlength=10) / col_n
    dense = np.zeros((30, 10))
    dense[r.rater, r.target] = r.score - col_mean[r.target]
    _, _, vt = np.linalg.svd(dense, full_matrices=False)
    raw = dense @ vt[:2].T
    scaled = raw * np.sqrt(10 / n_votes)[:, None]
    np.testing.assert_allclose(np.abs(g.coords), np.abs(scaled), atol=1e-9)


def test_dense_and_sparse_pca_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    d = two_factions(300, 30, 4000, seed=2)
    r = Ratings.build(d.rater, d.target, np.sign(d.score), d.n_raters, d.n_targets)
    dense = G.opinion_groups(r)
    monkeypatch.setattr(G, "DENSE_SVD_CELLS", 0)
    sparse = G.opinion_groups(r)
    np.testing.assert_allclose(sparse.coords, dense.coords, atol=1e-8)
    assert np.array_equal(sparse.labels, dense.labels)


def test_too_few_raters_or_targets() -> None:
    g = G.opinion_groups(Ratings.build([0, 1], [0, 0], [1.0, -1.0], 2, 1))
    assert g.k == 0 and (g.labels == -1).all() and np.isnan(g.consensus).all()
    assert g.repness == ()


def test_k_leaving_a_one_member_group_is_rejected() -> None:
    """red-dwarf's rule: an outlier must not become a group of its own."""
    from raters.groups import MIN_GROUP_SIZE

    rng = np.random.default_rng(1)
    n, nt = 41, 12
    camp = np.r_[np.zeros(20), np.ones(20), [2]].astype(int)
    means = np.array([np.where(np.arange(nt) % 2, 0.8, -0.8), np.where(np.arange(nt) % 2, -0.8, 0.8), np.full(nt, -1.0)])
    rater = np.repeat(np.arange(n), nt)
    target = np.tile(np.arange(nt), n)
    score = np.clip(means[camp[rater], target] + rng.normal(0, 0.2, len(rater)), -1, 1)
    g = G.opinion_groups(Ratings.build(rater, target, score, n, nt))
    assert g.k >= 2 and np.asarray(g.sizes).min() >= MIN_GROUP_SIZE
