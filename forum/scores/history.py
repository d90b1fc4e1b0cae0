"""Score history: each target's rating count and mean over log time (pure, no I/O).

Fed the same events as the :class:`~forum.scores.ledger.Ledger`, in seq order,
it follows every change of a target's *current* ratings (a new rating, a
replacement, a retracted rating) and records ``(seq, count, mean)`` right after
that log entry. So the history is a function of the log alone: replaying the
export gives the same points (``forum verify`` can recompute it).

To keep memory bounded, the n-th change of a target is recorded when
``n <= FULL`` or when n is a multiple of ``2 ** (n.bit_length() - STEP_BITS)``:
every change at first, then about ``2 ** (STEP_BITS - 1)`` points per doubling
(about 50 points for a target with 5,000 ratings); the target's latest state
is always returned as the last point.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from forum.protocol.events import Event
from forum.scores.ledger import Ledger, RatingEntry

FULL = 8
STEP_BITS = 4


def recorded(n: int) -> bool:
    """Whether a target's n-th change (1-based) is kept."""
    return n <= FULL or n % (1 << max(0, n.bit_length() - STEP_BITS)) == 0


@dataclass
class ScoreHistory:
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    points: dict[str, array[float]] = field(default_factory=dict)  # flat: seq, count, mean, seq, count, mean, ...

    def before(self, ledger: Ledger, seq: int, ev: Event) -> tuple[tuple[str, str], RatingEntry | None] | None:
        """Call before ``ledger.apply(seq, ev)``: what :meth:`after` compares with."""
        if seq <= ledger.head:
            return None
        if ev.kind == "rating":
            pair: tuple[str, str] | None = (ev.author, ev.body["target"])
        elif ev.kind == "retraction":
            pair = ledger.rating_pair(ev.body["target"])  # a rating being retracted (None otherwise)
        else:
            return None
        return (pair, ledger.current.get(pair)) if pair is not None else None

    def after(self, ledger: Ledger, seq: int, token: tuple[tuple[str, str], RatingEntry | None] | None) -> None:
        """Call after ``ledger.apply(seq, ev)`` with what :meth:`before` returned."""
        if token is None:
            return
        pair, before = token
        after = ledger.current.get(pair)
        if after is not before:
            self._move(seq, pair[1], before, after)

    def apply(self, ledger: Ledger, seq: int, ev: Event) -> set[str]:
        """``ledger.apply(seq, ev)``, following what it did to current ratings."""
        token = self.before(ledger, seq, ev)
        changed = ledger.apply(seq, ev)
        self.after(ledger, seq, token)
        return changed

    def _move(self, seq: int, target: str, before: RatingEntry | None, after: RatingEntry | None) -> None:
        s = self.sums.get(target, 0.0)
        c = self.counts.get(target, 0)
        if before is not None:
            s, c = s - before.score, c - 1
        if after is not None:
            s, c = s + after.score, c + 1
        self.sums[target], self.counts[target] = s, c
        n = self.changes.get(target, 0) + 1
        self.changes[target] = n
        self.last_seq[target] = seq
        if recorded(n):
            self.points.setdefault(target, array("d")).extend((float(seq), float(c), s / c if c else 0.0))

    def of(self, target: str) -> list[tuple[int, int, float | None]]:
        """(seq, count, mean) points of ``target``, oldest first, ending with its current state."""
        flat = self.points.get(target)
        out: list[tuple[int, int, float | None]] = []
        if flat is not None:
            for i in range(0, len(flat), 3):
                c = int(flat[i + 1])
                out.append((int(flat[i]), c, round(flat[i + 2], 6) if c else None))
        last = self.last_seq.get(target)
        if last is not None and (not out or out[-1][0] != last):
            c = self.counts[target]
            out.append((last, c, round(self.sums[target] / c, 6) if c else None))
        return out
