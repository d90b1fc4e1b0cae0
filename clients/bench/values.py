"""Benchmark of the values documents (``python -m clients.bench.values [EVENTS]``): JSON out.

Builds a synthetic log in memory (agents with two opinion camps rating proposals,
``wiser`` statements over 10 values cards, flags with assessments that qualify
and go to a jury), then measures what the forum's values engine does with it:
the replay of the whole log into :class:`forum.values.state.ValuesState` (what a
restart and ``forum verify`` do), one recomputation of each document (what
follows every committed batch), the opinion-group fits the draws needed, and the
peak memory of the replay (tracemalloc). Figures depend on the machine and its
load; the output says the load average.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import tracemalloc
from typing import Any

from forum.values.state import ValuesState


def _id(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def synthetic_log(events: int, agents: int = 300) -> list[tuple[int, str, str, str, int, dict[str, Any]]]:
    """(seq, id, author, kind, created_at, body) rows: mostly ratings, some wiser and cases."""
    dids = [f"did:key:z6Mk{_id('agent', i)[:43]}" for i in range(agents)]
    rows: list[tuple[int, str, str, str, int, dict[str, Any]]] = []

    def add(author: str, kind: str, body: dict[str, Any]) -> str:
        eid = _id(len(rows), author, kind)
        rows.append((len(rows) + 1, eid, author, kind, 1_700_000_000_000 + len(rows), body))
        return eid

    for i, d in enumerate(dids):
        add(d, "agent", {"name": f"a{i}", "about": "", "owner": f"owner {i}"})
    cards = [add(dids[0], "criterion", {"title": f"card {k}"}) for k in range(10)]
    props = [add(dids[i % agents], "proposal", {"title": f"p{i}"}) for i in range(100)]
    case_every = max(1, events // 20)
    i = 0
    while len(rows) < events:
        i += 1
        d = dids[i % agents]
        if i % case_every == 0 and len(rows) > 1000:
            case = add(d, "flag", {"target": dids[(i + 1) % agents], "right": "livelihood", "harm": "h", "evidence": [], "links": []})
            for k in range(2, 8):
                add(dids[(i + k * 37) % agents], "assessment", {"flag": case, "layer": "rights", "reason": ""})
        elif i % 50 == 0:
            a, b = cards[i % 10], cards[(i * 7 + 3) % 10]
            if a != b:
                add(d, "wiser", {"context": "c", "tags": [f"t{i % 3}"], "a": a, "b": b, "judgement": "wiser" if i % 3 else "not_wiser"})
        else:
            p = (i * 31) % len(props)
            camp = 1.0 if (i % agents) % 2 == 0 else -1.0
            add(d, "rating", {"target": props[p], "score": camp if p < 50 else -camp, "criteria": {}})
    return rows


def run(events: int) -> dict[str, Any]:
    rows = synthetic_log(events)
    tracemalloc.start()  # memory in a first replay (tracemalloc slows it down) ...
    probe = ValuesState()
    for r in rows:
        probe.apply_parts(*r)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del probe
    state = ValuesState()  # ... time in a second one
    t0 = time.perf_counter()
    for r in rows:
        state.apply_parts(*r)
    replay = time.perf_counter() - t0
    t1 = time.perf_counter()
    graph = state.moral_graph_document()
    t2 = time.perf_counter()
    cases = state.cases_document()
    t3 = time.perf_counter()
    return {
        "events": len(rows),
        "wiser": len(state.statements),
        "cases": len(cases["cases"]),
        "cases_drawn": sum(1 for c in cases["cases"] if c["rounds"]),
        "group_fits": state.arbitration.group_fits,
        "replay_s": round(replay, 3),
        "replay_events_per_s": round(len(rows) / replay),
        "replay_peak_mib": round(peak / 2**20, 1),
        "moral_graph_ms": round((t2 - t1) * 1000, 2),
        "moral_graph_contexts": len(graph["contexts"]),
        "cases_document_ms": round((t3 - t2) * 1000, 2),
        "loadavg": os.getloadavg()[0],
    }


if __name__ == "__main__":  # pragma: no cover - a measurement, run by hand
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
