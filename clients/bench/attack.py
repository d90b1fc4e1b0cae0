"""``forum bench attack``: how far can k fresh keys move the published scores?

A simulated forum, built from real signed events and scored by the forum's own code
(:class:`forum.scores.ledger.Ledger`, :func:`forum.scores.documents.cheap_document`,
:func:`forum.scores.documents.fitted_document`, :func:`forum.scores.documents.target_view`):

* **honest forum**: ``HONEST_RATERS`` (40) raters in two camps of equal size;
  ``CONSENSUS`` (10) proposals both camps like (true mean +0.45 ... +0.80), ``PARTISAN``
  (10) proposals one camp likes (+0.7) and the other dislikes (-0.7), ``REJECTED`` (4)
  proposals both dislike (-0.6); every honest rater rates every proposal (Gaussian noise
  0.25, clipped to [-1, 1]), in random order; a tenth of the raters rate each honest
  community +0.6; three honest communities (published first) report on the first
  consensus proposal: cost -18 %, -21 %, -24 % (lower is better), n = 120, 200, 300,
  verdict success.
* **attacks**, each with k fresh keys (k in ``KS`` = 10, 50, 100, 500), on top of the
  honest forum:

  - ``one``: every key rates one consensus proposal -1;
  - ``set``: every key rates every consensus proposal -1 and every partisan proposal +1;
  - ``outcome``: every key publishes a community profile named "Honest town 0" and one
    outcome report on the reported proposal: verdict failure, cost +100 % with
    n = 10^9; the first key instead reports baseline 1e-9, observed 1e9;
  - ``author``: the proposal's own author publishes a community profile and a report
    of +99,900 % with n = 10^9 (k does not matter; run once).

For every attack and k the report gives, per published score (raw and protected mean
and shrunk mean, bridging score), the largest move over all proposals, the statuses
that changed, whether standing was applied, and the pooled outcome against the honest
communities' interval.  Targets (``targets_met``): with 500 keys no consensus proposal
loses its status, standing is always applied, and the pooled outcome stays inside the
honest communities' range.

Pure and deterministic (keys derived from a fixed secret, fixed timestamps, NumPy
``default_rng(seed)``); no server, no clock.  Run with ``forum bench attack``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clients.sdk import builders
from clients.sdk.keys import Key, derive_key
from forum.protocol.events import Event
from forum.scores.documents import build_index, cheap_document, fitted_document, target_view
from forum.scores.ledger import Ledger

__all__ = ["ATTACKS", "KS", "run_attack_bench"]

KS = (10, 50, 100, 500)
ATTACKS = ("one", "set", "outcome", "author")
HONEST_RATERS = 40
CONSENSUS = 10
PARTISAN = 10
REJECTED = 4
NOISE = 0.25
SECRET = "mycelium-bench-attack"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, fixed so every run signs the same events
HONEST_COST = ((-0.18, 120), (-0.21, 200), (-0.24, 300))

Progress = Callable[[str], None] | None


@dataclass
class Forum:
    """An event list being built, with the ids the scenario needs."""

    events: list[Event]
    clock: int
    consensus: list[str]
    partisan: list[str]
    rejected: list[str]
    authors: dict[str, Key]

    def add(self, build: Callable[..., builders.SignedEvent], key: Key, **body: Any) -> Event:
        """Sign ``build(key, **body)`` one millisecond after the previous event."""
        self.clock += 1
        ev = build(key, created_at=self.clock, **body).event
        self.events.append(ev)
        return ev


def _key(label: str) -> Key:
    return derive_key(SECRET, label)


def honest_forum(seed: int = 0) -> Forum:
    """The honest forum described in the module doc."""
    rng = np.random.default_rng(seed)
    f = Forum([], T0, [], [], [], {})
    raters = [_key(f"honest/{i}") for i in range(HONEST_RATERS)]
    camp = np.arange(HONEST_RATERS) % 2
    communities = [_key(f"community/{i}") for i in range(len(HONEST_COST))]
    for i, c in enumerate(communities):
        f.add(builders.community, c, name=f"Honest town {i}", about="A real place.")
    means: list[tuple[float, float]] = []
    kinds = [("consensus", f.consensus)] * CONSENSUS + [("partisan", f.partisan)] * PARTISAN + [("rejected", f.rejected)] * REJECTED
    for j, (kind, bucket) in enumerate(kinds):
        author = _key(f"author/{j}")
        ev = f.add(builders.proposal, author, title=f"{kind} proposal {j}", text="Text.")
        bucket.append(ev.id)
        f.authors[ev.id] = author
        if kind == "consensus":
            m = 0.45 + 0.35 * len(bucket) / CONSENSUS
            means.append((m, m))
        elif kind == "partisan":
            means.append((0.7, -0.7) if len(bucket) % 2 else (-0.7, 0.7))
        else:
            means.append((-0.6, -0.6))
    targets = f.consensus + f.partisan + f.rejected
    pairs = [(u, j) for u in range(HONEST_RATERS) for j in range(len(targets))]
    for p in rng.permutation(len(pairs)):  # raters come and go: ratings interleave in the log
        u, j = pairs[int(p)]
        s = float(np.clip(means[j][camp[u]] + rng.normal(0.0, NOISE), -1.0, 1.0))
        f.add(builders.rating, raters[u], target=targets[j], score=round(s, 3))
    for u in range(0, HONEST_RATERS, 4):  # a tenth of the raters know the honest communities
        for c in communities:
            f.add(builders.rating, raters[u], target=c.did, score=0.6)
    reported = f.consensus[0]
    for c, (rel, n) in zip(communities, HONEST_COST, strict=True):
        metric = builders.metric("cost", unit="EUR", baseline=100.0, observed=round(100.0 * (1 + rel), 6), n=n, higher_is_better=False)
        f.add(builders.outcome, c, proposal=reported, status="completed", verdict="success", period_start="2026-01-01", metrics=[metric])
    return f


def attack(base: Forum, kind: str, k: int) -> Forum:
    """The honest forum plus one attack by k fresh keys (see module doc)."""
    f = Forum(list(base.events), base.clock, base.consensus, base.partisan, base.rejected, base.authors)
    keys = [_key(f"sybil/{kind}/{i}") for i in range(k)]
    reported = base.consensus[0]
    if kind == "one":
        for key in keys:
            f.add(builders.rating, key, target=base.consensus[0], score=-1.0)
    elif kind == "set":
        for key in keys:
            for target in base.consensus:
                f.add(builders.rating, key, target=target, score=-1.0)
            for target in base.partisan:
                f.add(builders.rating, key, target=target, score=1.0)
    elif kind == "outcome":
        for i, key in enumerate(keys):
            f.add(builders.community, key, name="Honest town 0", about="A real place.")
            if i == 0:
                metric = builders.metric("cost", unit="EUR", baseline=1e-9, observed=1e9, n=10**9, higher_is_better=False)
            else:
                metric = builders.metric("cost", unit="EUR", baseline=100.0, observed=200.0, n=10**9, higher_is_better=False)
            f.add(builders.outcome, key, proposal=reported, status="completed", verdict="failure", period_start="2026-01-01", metrics=[metric])
    elif kind == "author":
        author = base.authors[reported]
        f.add(builders.community, author, name="Author town", about="Mine.")
        metric = builders.metric("cost", unit="EUR", baseline=100.0, observed=0.1, n=10**9, higher_is_better=False)
        f.add(builders.outcome, author, proposal=reported, status="completed", verdict="success", period_start="2026-01-01", metrics=[metric])
    else:
        raise ValueError(f"unknown attack {kind!r}")
    return f


def publish(f: Forum) -> dict[str, dict[str, Any]]:
    """Score the forum as the forum does; return target id -> published view."""
    ledger = Ledger()
    for seq, ev in enumerate(f.events, start=1):
        ledger.apply(seq, ev)
    cheap = cheap_document(ledger)
    fitted, _ = fitted_document(ledger)
    index = build_index(cheap, fitted)
    views = {}
    for t in f.consensus + f.partisan + f.rejected:
        v = target_view(t, cheap, fitted, index)
        if v is not None:
            views[t] = v
    views["__fitted__"] = {"standing_applied": (fitted.get("result") or {}).get("standing_applied")}
    return views


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _measures(v: dict[str, Any]) -> dict[str, Any]:
    b = v.get("bridging") or {}
    prot = v.get("protected") or {}
    return {
        "mean": _num(v.get("mean")),
        "shrunk_mean": _num(v.get("shrunk_mean")),
        "protected_mean": _num(prot.get("mean")),
        "protected_shrunk_mean": _num(prot.get("shrunk_mean")),
        "bridging": _num(b.get("score")),
        "status": b.get("status"),
    }


def _cost(v: dict[str, Any]) -> dict[str, Any] | None:
    out = v.get("outcomes")
    if not out:
        return None
    for m in out.get("metrics", []):
        if m["name"] == "cost":
            return {
                "mean": _num(m.get("mean")),
                "low": _num(m.get("low")),
                "high": _num(m.get("high")),
                "reports": m.get("reports"),
                "success_rate": _num(out.get("success_rate")),
            }
    return None


def compare(base: Forum, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How far each published score moved between two publications."""
    moves: dict[str, float] = {}
    changes = []
    for t in base.consensus + base.partisan + base.rejected:
        mb, ma = _measures(before[t]), _measures(after[t])
        for name in ("mean", "shrunk_mean", "protected_mean", "protected_shrunk_mean", "bridging"):
            x, y = mb[name], ma[name]
            if x is not None and y is not None:
                moves[name] = max(moves.get(name, 0.0), abs(y - x))
        if mb["status"] != ma["status"]:
            kind = "consensus" if t in base.consensus else "partisan" if t in base.partisan else "rejected"
            changes.append({"target": t[:12], "kind": kind, "before": mb["status"], "after": ma["status"]})
    reported = base.consensus[0]
    return {
        "max_move": {k: round(v, 4) for k, v in sorted(moves.items())},
        "status_changes": changes,
        "consensus_lost_status": sum(1 for c in changes if c["kind"] == "consensus"),
        "standing_applied": after["__fitted__"]["standing_applied"],
        "outcome_cost": _cost(after[reported]),
    }


def run_attack_bench(ks: Sequence[int] = KS, attacks: Sequence[str] = ATTACKS, progress: Progress = None, seed: int = 0) -> dict[str, Any]:
    """Run every attack for every k; JSON-ready report (see module doc)."""
    t0 = time.perf_counter()
    base = honest_forum(seed)
    if progress:
        progress("honest forum")
    before = publish(base)
    honest_cost = _cost(before[base.consensus[0]])
    rels = [rel for rel, _ in HONEST_COST]
    honest_range = (min(rels), max(rels))
    statuses = {kind: [_measures(before[t])["status"] for t in ids] for kind, ids in (("consensus", base.consensus), ("partisan", base.partisan), ("rejected", base.rejected))}
    results = []
    for kind in attacks:
        for k in ks if kind != "author" else (1,):
            if progress:
                progress(f"{kind} k={k}")
            after = publish(attack(base, kind, k))
            row = {"attack": kind, "k": k, **compare(base, before, after)}
            cost = row["outcome_cost"]
            # "no pooled outcome outside the honest interval": the honest range, here -24 % ... -18 % (better = positive)
            row["outcome_inside_honest_range"] = None if cost is None or cost["mean"] is None else bool(-honest_range[1] - 1e-9 <= cost["mean"] <= -honest_range[0] + 1e-9)
            results.append(row)
    worst = [r for r in results if r["k"] == max(ks) or r["attack"] == "author"]
    targets = {
        "no_consensus_status_lost_at_max_k": all(r["consensus_lost_status"] == 0 for r in worst if r["attack"] in ("one", "set")),
        "standing_always_applied": all(bool(r["standing_applied"]) for r in results),
        "pooled_outcome_inside_honest_range": all(r["outcome_inside_honest_range"] is not False for r in results),
    }
    return {
        "scenario": {"honest_raters": HONEST_RATERS, "consensus": CONSENSUS, "partisan": PARTISAN, "rejected": REJECTED, "noise": NOISE, "seed": seed, "honest_cost_range": [-honest_range[1], -honest_range[0]]},
        "honest": {"statuses": statuses, "outcome_cost": honest_cost, "standing_applied": before["__fitted__"]["standing_applied"]},
        "results": results,
        "targets_met": targets,
        "seconds": round(time.perf_counter() - t0, 2),
    }


if __name__ == "__main__":  # pragma: no cover - manual run
    import orjson

    print(orjson.dumps(run_attack_bench(progress=print), option=orjson.OPT_INDENT_2).decode())
