"""``forum verify`` for the values documents: the moral graph and the cases.

:class:`ValuesAudit` is fed the same verified events as the score audit
(:func:`clients.audit.audit`), replays them through
:class:`forum.values.state.ValuesState` and recomputes each served document at
its own ``as_of_seq``: the moral graph (numbers to 1e-9, everything else
exactly) and the cases document (every case, assessment, draw, seat,
replacement, vote, tally, verdict and remedy, exactly).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from forum.protocol.events import Event
from forum.values.state import ValuesState
from raters.arbitration import Rules

FLOAT_TOL = 1e-9
_MAX_FINDINGS = 200

DOCS = (("moral_graph", "moral-graph", "/api/v1/moral-graph"), ("cases", "cases", "/api/v1/cases"))
"""(key, report section, endpoint) of each values document."""


def _jsonable(doc: Any) -> Any:
    return orjson.loads(orjson.dumps(doc))


def diff(expected: Any, actual: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every difference between two JSON values: numbers within FLOAT_TOL, the rest exactly."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(expected.keys() | actual.keys()):
            sub = f"{path}.{k}" if path else str(k)
            if k not in actual or k not in expected:
                yield sub, expected.get(k), actual.get(k)
            else:
                yield from diff(expected[k], actual[k], sub)
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            yield f"{path}.length", len(expected), len(actual)
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            yield from diff(e, a, f"{path}[{i}]")
    elif (
        isinstance(expected, float | int) and isinstance(actual, float | int)
        and not isinstance(expected, bool) and not isinstance(actual, bool)
    ):  # fmt: skip
        if not math.isclose(expected, actual, rel_tol=FLOAT_TOL, abs_tol=FLOAT_TOL):
            yield path, expected, actual
    elif expected != actual:
        yield path, expected, actual


class ValuesAudit:
    """Replays verified events and compares the served values documents (no I/O)."""

    def __init__(self, served: Mapping[str, Any] | None) -> None:
        self.served = {k: v for k, v in (served or {}).items() if v is not None}
        stated = (self.served.get("cases") or {}).get("rules")
        # The rules the forum states (windows may be scaled by its settings); checked below.
        self.rules = Rules.from_dict(stated) if isinstance(stated, dict) else Rules()
        self.state = ValuesState(self.rules)
        self.mine: dict[str, Any] = {}
        self.todo = sorted((int(doc.get("as_of_seq", -1)), key) for key, doc in self.served.items())
        self.warnings = [f"the forum serves no {section} document: not checked" for key, section, _ in DOCS if key not in self.served]
        default = replace(Rules(), **{w: getattr(self.rules, w) for w in Rules.WINDOWS})
        if self.rules != default:
            self.warnings.append("the cases document states thresholds other than the published defaults: recomputed with the stated rules")

    def _compute_due(self, before_seq: int | None) -> None:
        while self.todo and (before_seq is None or before_seq > self.todo[0][0]):
            at, key = self.todo.pop(0)
            doc = self.state.moral_graph_document() if key == "moral_graph" else self.state.cases_document()
            doc["as_of_seq"] = at
            self.mine[key] = _jsonable(doc)

    def apply(self, seq: int, ev: Event) -> None:
        self._compute_due(seq)
        self.state.apply(seq, ev)

    def finish(self, last_seq: int) -> tuple[list[tuple[str, str, Any, Any]], list[str]]:
        """(section, path, expected, actual) of every difference, and the sections checked."""
        self._compute_due(None)
        findings: list[tuple[str, str, Any, Any]] = []
        checked = []
        for key, section, _ in DOCS:
            if key not in self.served:
                continue
            checked.append(section)
            served = _jsonable(self.served[key])
            if served.get("as_of_seq", -1) > last_seq:
                findings.append(("export", f"{section}.as_of_seq", f"<= {last_seq} (last exported seq)", served["as_of_seq"]))
                continue
            for path, e, a in diff(self.mine[key], served):
                findings.append((section, path, e, a))
                if len(findings) >= _MAX_FINDINGS:
                    break
        return findings, checked
