"""Status checkpoints: hysteresis that ``forum verify`` reproduces from the export alone.

A published status keeps its *reference* status while the target's figures stay within
``raters.bridging.HYSTERESIS`` of that status' conditions (Community Notes' idea: a
status does not flicker with each refit).  The reference must not depend on when the
forum happened to refit (wall time, batch boundaries), or no one could recompute it.  So
references are computed at **checkpoints**, fixed log positions derived from seq alone:

* ``c`` is a checkpoint when ``c % step(c) == 0``, with
  ``step(c) = max(MIN_STEP, 2 ** (c.bit_length() - 3))``: every 256 seqs up to 2,048,
  then four per doubling of the log (2^m, 1.25·2^m, 1.5·2^m, 1.75·2^m);
* the reference at checkpoint ``c_k`` is the statuses of a **cold-start** fit of the log
  prefix up to ``c_k`` (both bridging passes, :func:`raters.pipeline.compute_statuses`),
  classified with the reference at ``c_(k-1)`` as ``previous``: the chain itself has
  hysteresis, so a target oscillating around a threshold keeps its status from one
  checkpoint to the next;
* a fitted document at ``fit_as_of_seq = s`` classifies with the reference of the last
  checkpoint ``<= s`` and publishes it (``status_reference``); ``forum verify`` replays
  the same checkpoints and compares the reference exactly.

Why these constants: a checkpoint costs two bridging fits of the log prefix; the chain is
recomputed by every verifier and by a forum replaying its log.  With four checkpoints
per doubling the whole chain costs about seven fits of the final log (a geometric sum),
whatever the log's size, while a reference is never older than a quarter of the log;
``MIN_STEP`` = 256 refreshes it often while the forum is small and fits are cheap.
Between two checkpoints in a gap of the log without events, the state is the same and
classifying twice changes nothing, so only the last checkpoint before the next event is
computed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from forum.scores.documents import inputs_from_ledger
from forum.scores.ledger import Ledger
from raters.pipeline import compute_statuses

MIN_STEP = 256
"""Checkpoint spacing while the log is small (a power of two)."""
PER_OCTAVE_BITS = 2
"""``2 ** PER_OCTAVE_BITS`` = 4 checkpoints per doubling of the log past ``4 * MIN_STEP``."""


def step_at(seq: int) -> int:
    """Checkpoint spacing in the octave of ``seq`` (seq >= 1)."""
    return max(MIN_STEP, 1 << max(0, seq.bit_length() - 1 - PER_OCTAVE_BITS))


def is_checkpoint(seq: int) -> bool:
    return seq > 0 and seq % step_at(seq) == 0


def last_checkpoint(upto: int) -> int:
    """The largest checkpoint ``<= upto`` (0 when there is none)."""
    if upto < MIN_STEP:
        return 0
    step = step_at(upto)
    return upto // step * step


@dataclass(frozen=True)
class StatusReference:
    """The statuses at one checkpoint: ``seq`` (0 = none yet) and target -> status."""

    seq: int = 0
    status: dict[str, str] = field(default_factory=dict)

    def due(self, upto: int) -> int:
        """The last checkpoint ``<= upto`` this reference does not cover yet (0: none)."""
        c = last_checkpoint(upto)
        return c if c > self.seq else 0

    def to_dict(self, targets: list[str]) -> dict[str, object]:
        """The published form: ``as_of_seq`` and one status (or null) per target."""
        return {"as_of_seq": self.seq, "status": [self.status.get(t) for t in targets]}


def advance(reference: StatusReference, ledger: Ledger, at: int) -> StatusReference:
    """The reference at checkpoint ``at`` from the ledger's state there (its ratings must
    be exactly those of the log prefix up to ``at``) and the previous reference.

    Every current rating counts, including those of agents under an arbitration remedy:
    which remedies a forum applies at a given seq depends on when its arbitration
    timeline caught up (the documents state it), while a checkpoint must depend on the
    log prefix alone.  The published statuses leave remedied agents out; the reference
    only decides within the hysteresis margin.
    """
    if ledger.remedied:
        ledger = dataclasses.replace(ledger, remedied=frozenset())  # shallow: only read
    inp = inputs_from_ledger(ledger)
    if inp.ratings.n_ratings == 0:
        return StatusReference(at, {})
    previous = tuple(reference.status.get(t) for t in inp.targets)
    statuses = compute_statuses(inp.ratings, previous=previous, age=inp.age)
    return StatusReference(at, dict(zip(inp.targets, statuses, strict=True)))
