"""The owner's side of an agent: the private profile, feedback, and notices.

Everything in this module stays on the owner's machine. An :class:`OwnerProfile`
(criteria with weights, the owner's name and notes, and every piece of
feedback the owner gave) is never published, never sent to the forum and never
put in an event: the agent publishes only ratings (a score per criterion and an
overall score) that its model derives from it. :meth:`OwnerProfile.save` writes
it to a file only the owner can read (mode 0600), like a key file.

Notices are how the agent talks back instead of silently going along:

* :class:`PriorityShiftNotice`: the owner's recent feedback disagrees with the
  long-run pattern (detected by :class:`PriorityWatch`, rules below);
* :class:`RequestConflictNotice`: the owner asked for a rating that contradicts
  what their past choices predict;
* :class:`PrioritiesConflictNotice`: the owner stated new priorities that fit
  their past choices worse than the current ones.

**PriorityWatch rules** (a CUSUM likelihood-ratio test on feedback residuals).
For each piece of feedback the agent computes a *residual*: the owner's overall
score minus what the profile implies. When the feedback has per-criterion
scores covering at least half the profile's weight, the implied score is the
profile-weighted mean of those per-criterion scores (``sum w_c s_c / sum w_c``),
which needs no model at all; otherwise it is the model's prediction made
*before* learning from this feedback. While the owner's priorities hold, the
residuals are small noise (what the unstated criteria, the owner's taste for
one post and the imprecision of a quick score add); when the priorities shift,
the profile's weights stop explaining the overall score and the residuals grow.

* The residuals since the profile last changed, up to the start of the
  current CUSUM excursion (below: a shift in progress must not raise the
  yardstick it is measured against), give the usual residual variance, with a
  prior: ``sigma^2 = (k0 * noise^2 + sum r^2) / (k0 + n)`` with ``noise`` =
  0.09 (a typical spread of an owner's overall score around their stated
  weights) worth ``k0`` = 6 residuals, so that four lucky residuals cannot
  make the next ordinary one look like a shift.
* From the ``min_history``-th (5) residual on, each new residual ``r`` (scored
  against the variance of the residuals *before* it) adds its log-likelihood
  ratio "variance ``ratio * sigma^2``" against "variance ``sigma^2``" to a
  CUSUM: ``S = max(0, S - ln(ratio) / 2 + r^2 / sigma^2 * (1 - 1 / ratio) / 2)``
  with ``ratio`` = 6 (a shift worth a notice makes the profile miss by at least
  about 2.4 times its usual error).
* A notice is raised when ``S`` exceeds ``threshold`` = 6.5. For Gaussian
  residuals this CUSUM raises a false alarm less than once per ``e^6.5``
  (about 660) residuals, i.e. under one owner in a hundred over twenty pieces
  of feedback (the variance is estimated, so a little more than that), and
  detects a shift of the assumed size after about ``threshold / KL`` =
  6.5 / 1.6, i.e. four, pieces of feedback. Measured on the demo's owners
  (1,200 owners, 4 seeds, tests/clients/test_demo.py does the same on 2):
  2 false notices, shifts noticed after a median of 3 to 4.5 pieces of
  feedback
  (``KL = (ratio - 1 - ln ratio) / 2``). ``forum demo`` measures both
  (docs/demo.md: ``shift_notice_delay``, ``shift_false_notices``).

A notice stands until the owner answers it: no second one meanwhile. The
owner accepts it (:meth:`clients.agent.owner_agent.OwnerAgent.accept`: the suggested
weights become the profile's and the long run starts again) or dismisses it
(:meth:`clients.agent.owner_agent.OwnerAgent.dismiss`: the CUSUM restarts and the
watch stays quiet for ``window`` (5) residuals). The notice carries the weights
that best explain the feedback since the disagreement began (where the CUSUM
last left 0, its change-point estimate): non-negative least squares of the
overall scores on the per-criterion scores, pulled lightly toward the current
weights (ridge 0.05) so that two or three rows still give an answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import orjson
from scipy.optimize import nnls

from forum.protocol import ids
from forum.protocol.events import Event

__all__ = [
    "Criterion",
    "Feedback",
    "Notice",
    "OwnerProfile",
    "PrioritiesConflictNotice",
    "PriorityShiftNotice",
    "PriorityWatch",
    "RequestConflictNotice",
]

PROFILE_FORMAT: Final = "mycelium-owner-profile/v1"
_CRITERION_REF: Final = ids.CRITERION_REF


@dataclass(frozen=True, slots=True)
class Criterion:
    """One criterion the owner cares about, with its weight (> 0).

    ``ref`` is what ratings name it by: a slug such as ``"affordability"`` or the
    64-hex id of a ``criterion`` event (a values card). The card's title,
    description and policies are kept for the owner's eyes only.
    """

    ref: str
    weight: float
    title: str = ""
    description: str = ""
    policies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ref, str) or not _CRITERION_REF.match(self.ref):
            raise ValueError(
                f"criterion {self.ref!r}: not a slug ([a-z0-9-]{{1,40}}) or an event id"
            )
        if not (
            isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight > 0
        ):
            raise ValueError(f"criterion {self.ref!r}: weight must be a positive number")

    @classmethod
    def from_event(cls, event: Event, weight: float) -> Criterion:
        """A criterion from a ``criterion`` event (a values card), referred to by its id."""
        if event.kind != "criterion":
            raise ValueError(f"not a criterion event: {event.kind}")
        b = event.body
        return cls(
            ref=event.id,
            weight=weight,
            title=str(b.get("title", "")),
            description=str(b.get("description", "")),
            policies=tuple(str(p) for p in b.get("policies", ())),
        )


@dataclass(frozen=True, slots=True)
class Feedback:
    """Something the owner told their agent about one post: private, never published.

    ``score`` and ``criteria`` are in [-1, 1]; ``note`` is free text for the agent only.
    """

    target: str
    score: float
    criteria: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    at_ms: int = 0

    def __post_init__(self) -> None:
        for value in (self.score, *self.criteria.values()):
            if not (isinstance(value, (int, float)) and -1.0 <= value <= 1.0):
                raise ValueError("feedback scores must be numbers in [-1, 1]")


@dataclass
class OwnerProfile:
    """The owner's private profile. Nothing in it is ever published."""

    criteria: list[Criterion]
    name: str = ""
    notes: str = ""
    feedback: list[Feedback] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.criteria:
            raise ValueError("a profile needs at least one criterion")
        refs = [c.ref for c in self.criteria]
        if len(set(refs)) != len(refs):
            raise ValueError("criteria must be distinct")

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], **kwargs: Any) -> OwnerProfile:
        """A profile from plain ``{slug: weight}`` (criteria with weight 0 are left out)."""
        return cls([Criterion(k, float(w)) for k, w in weights.items() if w > 0], **kwargs)

    @property
    def refs(self) -> list[str]:
        return [c.ref for c in self.criteria]

    @property
    def weights(self) -> dict[str, float]:
        """``{ref: weight}`` normalized to sum to 1."""
        total = sum(c.weight for c in self.criteria)
        return {c.ref: c.weight / total for c in self.criteria}

    def with_weights(self, weights: Mapping[str, float]) -> OwnerProfile:
        """The same profile with new weights (cards kept; criteria with weight <= 0 dropped)."""
        cards = {c.ref: c for c in self.criteria}
        crits = []
        for ref, w in weights.items():
            if w > 0:
                old = cards.get(ref)
                crits.append(
                    Criterion(ref, float(w), old.title, old.description, old.policies)
                    if old
                    else Criterion(ref, float(w))
                )
        return OwnerProfile(crits, name=self.name, notes=self.notes, feedback=self.feedback)

    # ------------------------------------------------------------------ the owner's file

    def to_json(self) -> bytes:
        data = {
            "format": PROFILE_FORMAT,
            "name": self.name,
            "notes": self.notes,
            "criteria": [asdict(c) for c in self.criteria],
            "feedback": [{**asdict(f), "criteria": dict(f.criteria)} for f in self.feedback],
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)

    @classmethod
    def from_json(cls, raw: bytes | str) -> OwnerProfile:
        data = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise ValueError(f"not an owner profile (expected format {PROFILE_FORMAT!r})")
        return cls(
            criteria=[
                Criterion(
                    c["ref"],
                    c["weight"],
                    c.get("title", ""),
                    c.get("description", ""),
                    tuple(c.get("policies", ())),
                )
                for c in data["criteria"]
            ],
            name=data.get("name", ""),
            notes=data.get("notes", ""),
            feedback=[
                Feedback(
                    f["target"],
                    f["score"],
                    dict(f.get("criteria", {})),
                    f.get("note", ""),
                    f.get("at_ms", 0),
                )
                for f in data.get("feedback", [])
            ],
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile to ``path`` (replaced atomically), readable only by the owner (0600)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(self.to_json())
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OwnerProfile:
        target = Path(path)
        if target.stat().st_mode & 0o077:
            raise PermissionError(
                f"{target}: group or others can read this private profile; run: chmod 600 {target}"
            )
        return cls.from_json(target.read_bytes())


# --------------------------------------------------------------------------- notices


@dataclass(frozen=True, kw_only=True)
class Notice:
    """Something the agent tells its owner instead of silently going along."""

    kind: str
    message: str
    feedback_count: int
    """How many pieces of feedback the agent had when it raised the notice."""


@dataclass(frozen=True, kw_only=True)
class PriorityShiftNotice(Notice):
    """Recent feedback disagrees with the long-run pattern."""

    kind: Literal["priority-shift"] = "priority-shift"
    recent_error: float = 0.0
    """RMS residual over the recent window."""
    usual_error: float = 0.0
    """RMS residual before the window (the long run)."""
    window: int = 0
    current_weights: Mapping[str, float] = field(default_factory=dict)
    suggested_weights: Mapping[str, float] = field(default_factory=dict)
    """Normalized weights that best explain the recent window (empty if unknown)."""

    @property
    def changes(self) -> dict[str, float]:
        """``suggested - current`` per criterion, largest change first."""
        keys = set(self.current_weights) | set(self.suggested_weights)
        diff = {
            k: self.suggested_weights.get(k, 0.0) - self.current_weights.get(k, 0.0) for k in keys
        }
        return dict(sorted(diff.items(), key=lambda kv: -abs(kv[1])))


@dataclass(frozen=True, kw_only=True)
class RequestConflictNotice(Notice):
    """The owner asked for a rating their past choices contradict; nothing was published."""

    kind: Literal["request-conflict"] = "request-conflict"
    target: str = ""
    requested: float = 0.0
    predicted: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PrioritiesConflictNotice(Notice):
    """The owner stated priorities that explain their past choices worse than the current ones."""

    kind: Literal["priorities-conflict"] = "priorities-conflict"
    current_weights: Mapping[str, float] = field(default_factory=dict)
    requested_weights: Mapping[str, float] = field(default_factory=dict)
    current_error: float = 0.0
    requested_error: float = 0.0


def normalized(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        raise ValueError("weights must have a positive sum")
    return {k: w / total for k, w in weights.items() if w > 0}


def implied_score(weights: Mapping[str, float], criteria: Mapping[str, float]) -> float | None:
    """The profile-weighted mean of per-criterion scores, or None when they cover under half the weight."""
    covered = sum(w for k, w in weights.items() if k in criteria)
    if covered < 0.5 * sum(weights.values()) or covered <= 0:
        return None
    return sum(w * criteria[k] for k, w in weights.items() if k in criteria) / covered


def rms(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), dtype=float)
    return float(np.sqrt(np.mean(arr**2))) if arr.size else 0.0


@dataclass
class PriorityWatch:
    """Watches the owner's feedback for a change of priorities (rules in the module doc)."""

    noise: float = 0.09
    prior_weight: float = 6.0
    ratio: float = 6.0
    threshold: float = 6.5
    min_history: int = 5
    window: int = 5
    ridge: float = 0.05
    residuals: list[float] = field(default_factory=list)
    rows: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    cusum: float = 0.0
    """The CUSUM statistic ``S`` (module doc)."""
    run_start: int = 0
    """Index into ``residuals`` where ``S`` last left 0: where a disagreement would have begun."""
    pending: bool = False
    """A notice was raised and the owner has not answered it yet (no new notice meanwhile)."""
    change_start: int = 0
    """Index into ``residuals`` where the disagreement of the pending notice began."""
    quiet_until: int = 0

    def reset(self) -> None:
        """Forget the history (the profile changed: the long run starts again)."""
        self.residuals.clear()
        self.rows.clear()
        self.pending = False
        self.quiet_until = 0
        self.cusum = 0.0
        self.run_start = 0

    def dismiss(self) -> None:
        """The owner says nothing changed: restart the CUSUM, stay quiet for a window, watch again."""
        self.pending = False
        self.cusum = 0.0
        self.quiet_until = len(self.residuals) + self.window
        self.run_start = self.quiet_until

    def variance(self, upto: int | None = None) -> float:
        """The usual residual variance (with its prior) from the residuals before ``upto``."""
        past = self.residuals[:upto]
        return (self.prior_weight * self.noise**2 + sum(r * r for r in past)) / (
            self.prior_weight + len(past)
        )

    def observe(
        self,
        residual: float,
        score: float,
        criteria: Mapping[str, float],
        weights: Mapping[str, float],
        feedback_count: int,
    ) -> PriorityShiftNotice | None:
        before = len(self.residuals)
        self.residuals.append(float(residual))
        self.rows.append((float(score), dict(criteria)))
        if self.pending or before < self.min_history or before < self.quiet_until:
            return None
        if self.cusum <= 0.0:
            self.run_start = before
        # the usual variance from the residuals before the current excursion (a shift in
        # progress must not raise the yardstick it is measured against)
        var = self.variance(self.run_start)
        llr = -0.5 * math.log(self.ratio) + 0.5 * residual * residual / var * (1 - 1 / self.ratio)
        self.cusum = max(0.0, self.cusum + llr)
        if self.cusum <= self.threshold:
            return None
        self.pending = True
        start = self.change_start = self.run_start
        usual = math.sqrt(self.variance(start))
        recent = rms(self.residuals[start:])
        suggested = self.explain(weights, start)
        cur = normalized(weights)
        hint = ""
        if suggested:
            up = max(suggested, key=lambda k: suggested[k] - cur.get(k, 0.0))
            down = min(cur, key=lambda k: suggested.get(k, 0.0) - cur[k])
            hint = f" They look as if {up} matters more to you now and {down} less than your profile says."
        window = len(self.residuals) - start
        return PriorityShiftNotice(
            message=(
                "Your recent ratings disagree with your usual pattern "
                f"(error {recent:.2f} over the last {window} against {usual:.2f} before).{hint} "
                "Have your priorities changed? I keep rating by your profile until you tell me."
            ),
            feedback_count=feedback_count,
            recent_error=recent,
            usual_error=usual,
            window=window,
            current_weights=cur,
            suggested_weights=suggested,
        )

    def suggest(self, weights: Mapping[str, float]) -> dict[str, float]:
        """While a notice is pending: the weights that best explain every feedback since the
        disagreement began (more rows than when the notice was raised, so a better answer)."""
        return self.explain(weights, self.change_start) if self.pending else {}

    def explain(self, weights: Mapping[str, float], start: int) -> dict[str, float]:
        """Normalized weights that best fit the feedback since ``start``: non-negative least squares
        of the overall scores on the per-criterion scores, pulled lightly (``ridge``) toward the
        current weights so that a few rows still give an answer. Empty when it cannot say."""
        refs = list(weights)
        cur = normalized(weights)
        rows = [(s, c) for s, c in self.rows[start:] if all(r in c for r in refs)]
        if not rows:
            return {}
        a = np.array([[c[r] for r in refs] for _, c in rows])
        b = np.array([s for s, _ in rows])
        lam = math.sqrt(self.ridge)
        a_aug = np.vstack([a, lam * np.eye(len(refs))])
        b_aug = np.concatenate([b, lam * np.array([cur[r] for r in refs])])
        w, _ = nnls(a_aug, b_aug)
        if w.sum() <= 1e-9:
            return {}
        return {r: float(x / w.sum()) for r, x in zip(refs, w, strict=True)}
