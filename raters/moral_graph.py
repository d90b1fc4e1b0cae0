"""The moral graph: which values card people judge wiser than another, per context.

Pure: plain records in, a JSON-ready document out (no I/O, imports nothing of
the forum). The forum publishes it (``GET /api/v1/moral-graph``) and
``forum verify`` recomputes it from the export; docs/arbitration.md states the rules.

Input: ``wiser`` statements "in this context, card ``b`` is wiser than card
``a``" (``wiser``), "is not" (``not_wiser``) or ``unsure``, and the values cards
(``criterion`` events) they name.

1. **Which statements count.** Per author and ordered pair ``(a, b)`` only the
   author's latest statement in log order (greatest seq) that is not retracted.
2. **Contexts.** Free-text contexts cannot be compared, their tags can: a
   statement counts in the graph of each of its tags and in the global graph
   ``*`` (every statement).
3. **Edges.** Per context and ordered pair: counts of ``wiser``, ``not_wiser``,
   ``unsure``. The *wiser-likelihood* is the posterior mean of a Beta(1, 1)
   prior updated with ``wiser`` successes out of ``wiser + not_wiser`` trials
   (``unsure`` carries no evidence), with a 90 % equal-tailed credible
   interval (``low``, ``high``).
4. **Ranking.** PageRank (damping 0.85) over the edges ``a -> b`` weighted by
   the likelihood of the edges with at least one decided statement; dangling
   cards spread their rank evenly; power iteration until the L1 change is
   below 1e-12 (at most 1000 steps). Cards sort by rank (descending), ties by id.
5. **Suggestions.** :func:`suggestions` lists the cards people who held ``a``
   came to prefer in a context: edges out of ``a`` whose interval lies above 0.5.
   An agent may show them to its owner; nothing here changes anyone's values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

ALGORITHM: Final = "moral-graph"
VERSION: Final = 1
PRIOR: Final = (1.0, 1.0)
INTERVAL: Final = 0.90
DAMPING: Final = 0.85
MAX_STEPS: Final = 1000
TOLERANCE: Final = 1e-12
GLOBAL: Final = "*"


@dataclass(frozen=True, slots=True)
class Statement:
    """One ``wiser`` event."""

    seq: int
    id: str
    author: str
    context: str
    tags: tuple[str, ...]
    a: str
    b: str
    judgement: str


@dataclass(frozen=True, slots=True)
class Card:
    """One values card (a ``criterion`` event)."""

    id: str
    author: str
    title: str


def current_statements(statements: Iterable[Statement], retracted: Iterable[str] = ()) -> list[Statement]:
    """Rule 1: the latest non-retracted statement per (author, a, b), in seq order."""
    gone = set(retracted)
    latest: dict[tuple[str, str, str], Statement] = {}
    for s in statements:
        if s.id in gone:
            continue
        key = (s.author, s.a, s.b)
        if key not in latest or s.seq > latest[key].seq:
            latest[key] = s
    return sorted(latest.values(), key=lambda s: s.seq)


@functools.lru_cache(maxsize=4096)
def likelihood(wiser: int, not_wiser: int) -> tuple[float, float, float]:
    """(posterior mean, low, high) of "b is wiser than a" (rule 3). Cached: counts repeat."""
    from scipy.stats import beta  # imported on first use: scipy.stats costs seconds at server start

    al, be = PRIOR[0] + wiser, PRIOR[1] + not_wiser
    tail = (1.0 - INTERVAL) / 2
    return (
        al / (al + be),
        float(beta.ppf(tail, al, be)),
        float(beta.ppf(1.0 - tail, al, be)),
    )


def pagerank(cards: list[str], edges: list[tuple[str, str, float]]) -> dict[str, float]:
    """Rule 4: PageRank of ``cards`` over weighted edges ``(a, b, w)`` (a's rank flows to b)."""
    n = len(cards)
    if n == 0:
        return {}
    idx = {c: i for i, c in enumerate(cards)}
    w = np.zeros((n, n))
    for a, b, weight in edges:
        w[idx[a], idx[b]] += weight
    out = w.sum(axis=1)
    dangling = out == 0
    p = np.divide(w, out[:, None], out=np.zeros_like(w), where=~dangling[:, None])
    r = np.full(n, 1.0 / n)
    for _ in range(MAX_STEPS):
        nxt = (1 - DAMPING) / n + DAMPING * (r @ p + r[dangling].sum() / n)
        done = float(np.abs(nxt - r).sum()) < TOLERANCE
        r = nxt
        if done:
            break
    return {c: float(r[i]) for c, i in idx.items()}


def moral_graph(
    statements: Iterable[Statement],
    cards: Mapping[str, Card],
    *,
    as_of_seq: int,
    retracted: Iterable[str] = (),
) -> dict[str, Any]:
    """The moral graph document (rules 1-4), deterministic from its inputs."""
    current = current_statements(statements, retracted)
    by_context: dict[str, list[Statement]] = {}
    for s in current:
        for ctx in (GLOBAL, *sorted(set(s.tags))):
            by_context.setdefault(ctx, []).append(s)
    contexts = []
    for ctx in sorted(by_context):
        stmts = by_context[ctx]
        counts: dict[tuple[str, str], dict[str, Any]] = {}
        for s in stmts:
            e = counts.setdefault((s.a, s.b), {"wiser": 0, "not_wiser": 0, "unsure": 0, "statements": []})
            e[s.judgement] += 1
            e["statements"].append(s.id)
        edges = []
        for (a, b), e in sorted(counts.items()):
            mean, low, high = likelihood(e["wiser"], e["not_wiser"])
            edges.append({"a": a, "b": b, "wiser": e["wiser"], "not_wiser": e["not_wiser"],
                          "unsure": e["unsure"], "likelihood": mean, "low": low, "high": high,
                          "statements": e["statements"]})  # fmt: skip
        ids = sorted({c for a, b in counts for c in (a, b)})
        ranks = pagerank(ids, [(x["a"], x["b"], x["likelihood"]) for x in edges if x["wiser"] + x["not_wiser"]])
        ranking = sorted(ids, key=lambda c: (-ranks[c], c))
        contexts.append({
            "context": ctx,
            "statements": len(stmts),
            "authors": len({s.author for s in stmts}),
            "ranking": [{"card": c, "rank": ranks[c]} for c in ranking],
            "edges": edges,
        })  # fmt: skip
    used = sorted({c for s in current for c in (s.a, s.b)})
    return {
        "algorithm": ALGORITHM,
        "version": VERSION,
        "as_of_seq": as_of_seq,
        "rules": {"prior": list(PRIOR), "interval": INTERVAL, "damping": DAMPING, "tolerance": TOLERANCE},
        "cards": {c: {"title": cards[c].title, "author": cards[c].author} if c in cards else None for c in used},
        "contexts": contexts,
    }


def suggestions(graph: Mapping[str, Any], card: str, context: str = GLOBAL) -> list[dict[str, Any]]:
    """Rule 5: cards that people who held ``card`` came to prefer in ``context`` (strongest first)."""
    for ctx in graph.get("contexts", ()):
        if ctx["context"] == context:
            out = [e for e in ctx["edges"] if e["a"] == card and e["low"] > 0.5]
            return sorted(out, key=lambda e: (-e["likelihood"], e["b"]))
    return []
