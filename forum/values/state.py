"""From the log to the moral graph and the arbitration documents (pure, no I/O).

The forum's values engine and ``forum verify`` both feed every event, in seq
order, into a :class:`ValuesState`, so the two documents are the same function
of the log wherever they are computed.
"""

from __future__ import annotations

from typing import Any, Final

from forum.protocol.events import Event
from forum.values.remedies import Remedies
from raters.arbitration import Arbitration, Record, Rules
from raters.moral_graph import Card, Statement, moral_graph

BODY_KINDS: Final = frozenset(
    {"agent", "criterion", "rating", "retraction", "wiser", "flag", "assessment", "commitment", "reveal", "appeal"}
)
"""Kinds whose bodies the documents read; of every other event only seq, id, author and kind."""


class ValuesState:
    """The inputs of both documents as of ``head``. Not thread-safe: one owner at a time."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.arbitration = Arbitration(rules)
        self.cards: dict[str, Card] = {}
        self.statements: list[Statement] = []
        self.retracted: set[str] = set()
        self.head = 0
        self.remedies = Remedies()
        """Agents whose ratings are out of the score pools, over log time."""
        self._verdicts = 0
        self._graph: dict[str, Any] | None = None  # the last moral graph, while no input of it changed

    def apply(self, seq: int, ev: Event) -> None:
        self.apply_parts(seq, ev.id, ev.author, ev.kind, ev.created_at, ev.body)

    def apply_parts(self, seq: int, eid: str, author: str, kind: str, created_at: int, body: dict[str, Any]) -> None:
        """Apply one event (seqs must increase; a repeated or older seq is ignored)."""
        if seq <= self.head:
            return
        self.head = seq
        arb = self.arbitration
        arb.apply(Record(seq, eid, author, kind, created_at, body))
        if arb.verdicts != self._verdicts:
            self._verdicts = arb.verdicts
            self.remedies.record(seq, arb.sanctioned())
        self.remedies.head = seq
        if kind in ("criterion", "wiser", "retraction"):
            self._graph = None
        if kind == "criterion":
            self.cards[eid] = Card(eid, author, body["title"])
        elif kind == "wiser":
            self.statements.append(
                Statement(seq, eid, author, body["context"], tuple(body["tags"]), body["a"], body["b"], body["judgement"])
            )
        elif kind == "retraction":
            self.retracted.add(body["target"])

    def moral_graph_document(self) -> dict[str, Any]:
        """The moral graph as of ``head`` (recomputed only when a card, a statement or a
        retraction arrived since the last one: otherwise the same graph, stamped ``head``)."""
        if self._graph is None:
            self._graph = moral_graph(self.statements, self.cards, as_of_seq=self.head, retracted=self.retracted)
        return {**self._graph, "as_of_seq": self.head}

    def cases_document(self) -> dict[str, Any]:
        doc = self.arbitration.document()
        doc["as_of_seq"] = self.head
        return doc
