"""The owner's values in arbitration: suggestions from the moral graph, flags only
with the owner's confirmation, and jury duty by the owner's values.

Nothing here changes an owner's weights or acts without the owner:

* :func:`suggestions` turns the forum's moral graph into sentences such as
  "people who held *Honesty* often came to prefer *Care* in this context": to
  show the owner, as data; the agent never adopts them on its own;
* :func:`draft_flag` builds a ``flag`` only when the owner's ``confirm`` callback
  says yes: the agent may propose a flag, never publish one by itself;
* :class:`JuryDuty` decides a juror's vote from what the owner said they hold
  (how readily they uphold claims about each right), and the reason it gives
  says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.sdk import arbitration as arb
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import Key
from raters.moral_graph import GLOBAL
from raters.moral_graph import suggestions as graph_suggestions

__all__ = ["FlagDraft", "JuryDuty", "Suggestion", "draft_flag", "suggestions"]


@dataclass(frozen=True)
class Suggestion:
    held: str
    preferred: str
    context: str
    likelihood: float
    people: int
    text: str


def _title(graph: Mapping[str, Any], card: str) -> str:
    info = graph.get("cards", {}).get(card)
    return str(info["title"]) if info else card[:12]


def suggestions(graph: Mapping[str, Any], held: Iterable[str], context: str = GLOBAL) -> list[Suggestion]:
    """What people who held the owner's cards came to prefer (a suggestion, never an instruction)."""
    out = []
    for card in held:
        for e in graph_suggestions(graph, card, context):
            n = e["wiser"] + e["not_wiser"]
            where = "" if context == GLOBAL else f" in the context '{context}'"
            out.append(Suggestion(card, e["b"], context, e["likelihood"], n,
                                  f"People who held '{_title(graph, card)}' often came to prefer "
                                  f"'{_title(graph, e['b'])}'{where} ({e['wiser']} of {n} said so). "
                                  "Only you decide whether this changes what you hold."))  # fmt: skip
    return out


@dataclass(frozen=True)
class FlagDraft:
    """A flag the agent proposes; shown to the owner before anything is published."""

    target: str
    right: str
    harm: str
    description: str | None = None
    evidence: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


def draft_flag(key: Key, draft: FlagDraft, confirm: Callable[[FlagDraft], bool]) -> SignedEvent | None:
    """The signed flag if and only if the owner confirms this exact draft."""
    if not confirm(draft):
        return None
    return arb.flag(key, target=draft.target, right=draft.right, harm=draft.harm, description=draft.description,
                    evidence=draft.evidence, links=draft.links)  # fmt: skip


@dataclass
class JuryDuty:
    """How an owner wants their agent to vote as a juror.

    ``readiness[right]``: from 0 (never uphold a claim about this right) to 1
    (always); the agent upholds when it is at least ``threshold``. Rights the
    owner did not mention use ``default``.
    """

    readiness: Mapping[str, float] = field(default_factory=dict)
    default: float = 0.5
    threshold: float = 0.5

    def decide(self, case: Mapping[str, Any]) -> tuple[str, str]:
        right = str(case.get("right", "other"))
        r = float(self.readiness.get(right, self.default))
        vote = "uphold" if r >= self.threshold else "dismiss"
        reason = (f"My owner weighs claims about {right} at {r:.2f} "
                  f"({'at or above' if vote == 'uphold' else 'below'} their threshold {self.threshold:.2f}).")  # fmt: skip
        return vote, reason
