"""The moral graph (raters/moral_graph.py): counts, likelihoods, ranking, suggestions."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from raters.moral_graph import Card, Statement, likelihood, moral_graph, pagerank, suggestions

CARDS = {c: Card(c, "did:key:author", c.title()) for c in ("honesty", "care", "fairness")}


def st_(seq: int, author: str, a: str, b: str, j: str = "wiser", tags: tuple[str, ...] = ("schools",)) -> Statement:
    return Statement(seq, f"{seq:064x}", author, "choosing a school", tags, a, b, j)


def test_counts_latest_statement_per_author_and_retractions() -> None:
    stmts = [st_(1, "u1", "honesty", "care"), st_(2, "u1", "honesty", "care", "not_wiser"),
             st_(3, "u2", "honesty", "care"), st_(4, "u3", "honesty", "care", "unsure"),
             st_(5, "u4", "honesty", "care")]  # fmt: skip
    g = moral_graph(stmts, CARDS, as_of_seq=5, retracted=[f"{5:064x}"])
    star = g["contexts"][0]
    assert star["context"] == "*" and [c["context"] for c in g["contexts"]] == ["*", "schools"]
    e = star["edges"][0]
    assert (e["wiser"], e["not_wiser"], e["unsure"]) == (1, 1, 1)
    assert e["likelihood"] == 0.5 and e["low"] < 0.5 < e["high"]
    assert g["cards"]["care"]["title"] == "Care"


def test_a_card_people_move_to_ranks_first_and_is_suggested() -> None:
    stmts = []
    for i in range(12):
        stmts.append(st_(2 * i + 1, f"u{i}", "honesty", "care"))
        stmts.append(st_(2 * i + 2, f"u{i}", "fairness", "care", "wiser" if i % 4 else "not_wiser"))
    g = moral_graph(stmts, CARDS, as_of_seq=24)
    ranking = [r["card"] for r in g["contexts"][0]["ranking"]]
    assert ranking[0] == "care"
    assert [e["b"] for e in suggestions(g, "honesty")] == ["care"]
    assert suggestions(g, "care") == [] and suggestions(g, "honesty", "no-such-context") == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(list(CARDS)), st.sampled_from(list(CARDS)),
                          st.sampled_from(["wiser", "not_wiser", "unsure"])), max_size=30))  # fmt: skip
def test_the_document_does_not_depend_on_input_order(rows: list[tuple[int, str, str, str]]) -> None:
    stmts = [st_(i + 1, f"u{u}", a, b, j) for i, (u, a, b, j) in enumerate(rows) if a != b]
    g = moral_graph(stmts, CARDS, as_of_seq=len(rows))
    shuffled = list(stmts)
    random.Random(1).shuffle(shuffled)
    assert moral_graph(shuffled, CARDS, as_of_seq=len(rows)) == g
    for ctx in g["contexts"]:
        assert abs(sum(r["rank"] for r in ctx["ranking"]) - 1.0) < 1e-9
        for e in ctx["edges"]:
            assert 0.0 <= e["low"] <= e["likelihood"] <= e["high"] <= 1.0


def test_pagerank_and_likelihood_edges() -> None:
    assert pagerank([], []) == {}
    r = pagerank(["a", "b"], [])
    assert r == {"a": 0.5, "b": 0.5}
    assert likelihood(0, 0)[0] == 0.5 and likelihood(9, 0)[1] > 0.7
