"""Communities like yours: the similarity's parts, determinism, and what a crowd of
fresh keys copying your attributes can and cannot do."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raters.similarity import (
    LIKE_YOURS_K,
    MIN_SIMILARITY,
    WEIGHTS,
    Community,
    like_yours,
    like_yours_document,
    neighbours,
    similarity_rows,
)


def sim(a: Community, b: Community) -> float:
    return float(similarity_rows([a, b], slice(0, 1))[0, 1])


def test_parts_and_weights() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    v = Community("a", type="village", size=300, region="FR-BRE", tags=("rural",))
    assert sim(v, Community("b")) == 0.0  # declaring nothing is like no one
    assert sim(v, Community("b", type="village")) == pytest.approx(WEIGHTS["type"])
    assert sim(v, Community("b", size=3000)) == pytest.approx(WEIGHTS["size"] * 0.5)  # one decade apart
    assert sim(v, Community("b", size=30000)) == 0.0
    assert sim(v, Community("b", region="FR-IDF")) == pytest.approx(WEIGHTS["region"] * 0.5)
    same_attrs = Community("b", type="village", size=300, region="FR-BRE", tags=("rural",))
    assert sim(v, same_attrs) == pytest.approx(1 - WEIGHTS["adopted"] - WEIGHTS["results"])
    # Results: same verdicts on three shared proposals add the full results weight.
    ra = Community("a", results={"p1": "success", "p2": "failure", "p3": "mixed"})
    rb = Community("b", results={"p1": "success", "p2": "failure", "p3": "mixed", "p4": "success"})
    assert sim(ra, rb) == pytest.approx(WEIGHTS["results"])
    rc = Community("c", results={"p1": "failure", "p2": "success", "p3": "mixed"})
    assert sim(ra, rc) == pytest.approx(WEIGHTS["results"] / 3)  # only the mixed one agrees
    assert sim(Community("a", adopted=frozenset({"p1", "p2"})), Community("b", adopted=frozenset({"p2"}))) == pytest.approx(WEIGHTS["adopted"] / 2)


def test_fresh_keys_copying_attributes_rank_below_a_peer_with_a_shared_record() -> None:
    record = {"p1": "success", "p2": "failure", "p3": "success"}
    me = Community("did:me", type="village", size=300, region="FR", results=record)
    peer = Community("did:peer", type="village", size=250, region="FR", results={**record, "p9": "success"})
    crowd = [Community(f"did:sybil{i:02d}", type="village", size=300, region="FR", results={"p9": "failure"}) for i in range(30)]
    nb = neighbours([me, peer, *crowd])["did:me"]
    assert nb[0][0] == "did:peer"
    # The crowd still fills the remaining like-yours slots: bounded to LIKE_YOURS_K - 1 voices.
    reports = {c.did: ("completed", "failure") for c in crowd} | {"did:peer": ("completed", "success")}
    ly = like_yours(nb, reports)
    assert ly is not None and ly.communities[0] == "did:peer" and len(ly.communities) == LIKE_YOURS_K


def test_like_yours_recovers_per_type_truth_better_than_the_pool() -> None:
    """Villages succeed, cities fail: each type's like-yours summary is near its own truth."""
    rng = random.Random(7)
    truth = {"village": 0.85, "city": 0.15}
    comms, reports = [], {}
    for i in range(24):
        kind = "village" if i % 2 else "city"
        did = f"did:{kind}{i:02d}"
        comms.append(Community(did, type=kind, size=rng.randint(200, 400) if kind == "village" else rng.randint(50_000, 90_000), region="DE"))
        reports[did] = ("completed", "success" if rng.random() < truth[kind] else "failure")
    doc = like_yours_document(comms, {"p": reports})
    n = len(reports)
    succ = sum(v == ("completed", "success") for v in reports.values())
    pooled = (succ + 1) / (n + 2)
    err_like = np.mean([abs(doc["like_yours"]["p"][c.did]["success_rate"] - truth[c.type or ""]) for c in comms])
    err_pool = np.mean([abs(pooled - truth[c.type or ""]) for c in comms])
    assert err_like < 0.6 * err_pool, (err_like, err_pool)


communities = st.lists(
    st.builds(
        Community,
        did=st.text("abcdef", min_size=1, max_size=4).map(lambda s: "did:" + s),
        type=st.none() | st.sampled_from(["village", "city", "x-boat"]),
        size=st.none() | st.integers(1, 10**9),
        region=st.none() | st.sampled_from(["DE", "DE-BY", "FR"]),
        tags=st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(tuple),
        adopted=st.frozensets(st.sampled_from(["p1", "p2", "p3"])),
        results=st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["success", "mixed", "failure"])),
    ),
    max_size=12,
    unique_by=lambda c: c.did,
)


@settings(max_examples=60, deadline=None)
@given(communities)
def test_similarity_is_symmetric_bounded_and_order_independent(comms: list[Community]) -> None:
    if not comms:
        assert neighbours(comms) == {}
        return
    m = similarity_rows(comms, slice(0, len(comms)))
    assert np.allclose(m, m.T)
    assert (m >= -1e-12).all() and (m <= 1 + 1e-12).all()
    shuffled = list(reversed(comms))
    assert neighbours(comms) == neighbours(shuffled)
    for did, nb in neighbours(comms).items():
        assert did not in [d for d, _ in nb]
        assert all(s >= MIN_SIMILARITY for _, s in nb)
        assert [s for _, s in nb] == sorted((s for _, s in nb), reverse=True)
