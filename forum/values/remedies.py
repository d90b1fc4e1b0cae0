"""Which agents are out of the score pools, over log time (docs/arbitration.md 3.5).

An upheld verdict against an agent takes its ratings out of every score pool
from the seq at which the arbitration reached it, until an appeal overturns it.
:class:`Remedies` is that timeline: :class:`forum.values.state.ValuesState`
records the set of remedied agents each time a verdict changes it, and
advances ``head`` past every event it applied. The score engine (and
``forum verify``) take the set in force at a seq (:meth:`Remedies.at`), never
beyond ``head``: the same log prefix always gives the same set.

No cycle: the arbitration reads the log (its own copy of the ratings, never a
score), so scores depend on verdicts and verdicts never on scores.

Written by one thread (the values engine's), read by the event loop: a change
is one tuple appended to a list, and ``head`` is advanced after it.
"""

from __future__ import annotations

import bisect

__all__ = ["Remedies"]


class Remedies:
    """The set of remedied agents (did:keys) after each seq."""

    def __init__(self) -> None:
        self.head = 0
        """The last seq applied: :meth:`at` is exact for every seq up to it."""
        self._changes: list[tuple[int, frozenset[str]]] = [(0, frozenset())]

    def record(self, seq: int, agents: frozenset[str]) -> None:
        """The set in force from ``seq`` on (ignored when it did not change)."""
        if agents != self._changes[-1][1]:
            self._changes.append((seq, agents))

    def at(self, seq: int) -> frozenset[str]:
        """The agents under a remedy in force as of ``seq`` (after applying it)."""
        return self._change(seq)[1]

    def since(self, seq: int) -> int:
        """The seq from which the set in force at ``seq`` holds (0: no verdict changed it yet)."""
        return self._change(seq)[0]

    def _change(self, seq: int) -> tuple[int, frozenset[str]]:
        changes = self._changes
        i = bisect.bisect_right(changes, seq, key=lambda c: c[0]) - 1
        return changes[max(i, 0)]

    def changes(self) -> list[tuple[int, frozenset[str]]]:
        """Every change so far: (seq, agents in force from then on)."""
        return list(self._changes[1:])
