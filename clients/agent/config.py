"""The owner's profile file (TOML): their values cards and the guard rails of their agent.

    # owner.toml: private to the owner, never published
    name = "Ada"                      # for the owner's eyes only

    [[criteria]]                      # values cards: a published card by id, or a private one
    ref = "affordability"             # slug, or the 64-hex id of a published criterion event
    weight = 1.0
    title = "Affordability"
    description = "What it costs the households that pay for it."
    policies = ["Look at who pays, not the total."]

    [guard]
    unasked = ["rate", "owner_feedback"]               # what the agent may do without asking
    confirm = ["propose", "revise", "report_outcome"]  # what needs the owner's yes
    [guard.per_hour]                                   # budgets, per action, per rolling hour
    rate = 120
    propose = 5

    [jury]                            # jury duty: how readily the owner upholds claims per right
    readiness = { livelihood = 0.8, reputation = 0.3 }
    default = 0.5                     # rights not listed
    threshold = 0.5                   # uphold when readiness >= threshold

An action in neither list is refused. Without a ``[guard]`` table the defaults
are :data:`DEFAULT_UNASKED`, :data:`DEFAULT_CONFIRM` and :data:`DEFAULT_PER_HOUR`.
``flag`` always needs the owner's yes (a profile that lists it in ``unasked`` is
refused). Without a ``[jury]`` table the agent does not vote when drawn for a
jury: it tells the owner (a notice) and its seat passes to the next juror.
The private state the agent learns (the owner's feedback, notices, what it
published) lives in a state folder beside the profile, see
:mod:`clients.agent.state`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from clients.agent.owner import Criterion, OwnerProfile
from clients.agent.values import JuryDuty
from forum.protocol.events import RIGHTS

__all__ = [
    "ACTIONS",
    "DEFAULT_CONFIRM",
    "DEFAULT_PER_HOUR",
    "DEFAULT_UNASKED",
    "Guard",
    "OwnerConfig",
    "ProfileError",
    "load_config",
]

ACTIONS: Final = (
    "propose",
    "revise",
    "rate",
    "report_outcome",
    "retract",
    "reply",
    "amend",
    "adopt",
    "owner_feedback",
    "flag",
    "jury_vote",
)
"""Everything the guard rails govern: every tool that publishes, and the owner's private feedback."""

DEFAULT_UNASKED: Final = ("rate", "jury_vote")
DEFAULT_CONFIRM: Final = ("propose", "revise", "report_outcome", "retract", "owner_feedback", "flag")
DEFAULT_PER_HOUR: Final = {
    "rate": 120,
    "propose": 5,
    "revise": 10,
    "report_outcome": 5,
    "retract": 20,
    "flag": 5,
    "jury_vote": 20,
}
ALWAYS_CONFIRM: Final = ("flag",)
"""Actions that always need the owner's yes, whatever the profile says."""


class ProfileError(ValueError):
    """The profile file cannot be used; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Guard:
    """What the agent may do unasked, what needs the owner's confirmation, and hourly budgets."""

    unasked: frozenset[str] = frozenset(DEFAULT_UNASKED)
    confirm: frozenset[str] = frozenset(DEFAULT_CONFIRM)
    per_hour: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PER_HOUR))

    def decision(self, action: str) -> str:
        """``"allow"``, ``"confirm"`` or ``"refuse"`` for one action."""
        if action in self.unasked:
            return "allow"
        if action in self.confirm:
            return "confirm"
        return "refuse"

    def to_json(self) -> dict[str, Any]:
        return {
            "unasked": sorted(self.unasked),
            "confirm": sorted(self.confirm),
            "per_hour": dict(self.per_hour),
        }


@dataclass(frozen=True, slots=True)
class OwnerConfig:
    """A parsed profile file: the owner's criteria (values cards) and the guard rails."""

    path: Path | None
    profile: OwnerProfile
    guard: Guard
    jury: JuryDuty | None = None
    """How the owner wants the agent to vote when drawn for a jury (None: it does not vote)."""

    @property
    def state_dir(self) -> Path | None:
        """Where the agent keeps what it learns: ``owner.toml`` -> ``owner.state/``."""
        return None if self.path is None else self.path.with_suffix(".state")

    def cards(self) -> list[dict[str, Any]]:
        """The values cards, as the owner wrote them (read-only for the model)."""
        return [
            {
                "ref": c.ref,
                "weight": round(w, 6),
                "title": c.title,
                "description": c.description,
                "policies": list(c.policies),
            }
            for c, w in zip(self.profile.criteria, self.profile.weights.values(), strict=True)
        ]


def _names(table: Mapping[str, Any], key: str, default: Sequence[str]) -> frozenset[str]:
    value = table.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"guard.{key} must be a list of action names")
    unknown = sorted(set(value) - set(ACTIONS))
    if unknown:
        raise ProfileError(
            f"guard.{key} names unknown actions {unknown}; the actions are {', '.join(ACTIONS)}"
        )
    return frozenset(value)


def _guard(table: Any) -> Guard:
    if table is None:
        return Guard()
    if not isinstance(table, dict):
        raise ProfileError("[guard] must be a table")
    extra = sorted(set(table) - {"unasked", "confirm", "per_hour"})
    if extra:
        raise ProfileError(f"[guard] has unknown keys {extra}; expected unasked, confirm, per_hour")
    unasked = _names(table, "unasked", DEFAULT_UNASKED)
    if forced := sorted(unasked & set(ALWAYS_CONFIRM)):
        raise ProfileError(f"guard.unasked lists {forced}: a flag always needs the owner's confirmation (move it to guard.confirm)")
    confirm = _names(table, "confirm", DEFAULT_CONFIRM) - unasked
    per_hour = dict(DEFAULT_PER_HOUR)
    budgets = table.get("per_hour", {})
    if not isinstance(budgets, dict):
        raise ProfileError("[guard.per_hour] must be a table of action = count")
    for action, n in budgets.items():
        if action not in ACTIONS:
            raise ProfileError(f"guard.per_hour names an unknown action {action!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ProfileError(f"guard.per_hour.{action} must be a whole number >= 0, got {n!r}")
        per_hour[action] = n
    return Guard(unasked, confirm, per_hour)


def _unit(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ProfileError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _jury(table: Any) -> JuryDuty | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ProfileError("[jury] must be a table")
    extra = sorted(set(table) - {"readiness", "default", "threshold"})
    if extra:
        raise ProfileError(f"[jury] has unknown keys {extra}; expected readiness, default, threshold")
    readiness = table.get("readiness", {})
    if not isinstance(readiness, dict):
        raise ProfileError("jury.readiness must be a table of right = number from 0 to 1")
    unknown = sorted(set(readiness) - set(RIGHTS))
    if unknown:
        raise ProfileError(f"jury.readiness names unknown rights {unknown}; the rights are {', '.join(RIGHTS)}")
    return JuryDuty(
        {r: _unit(v, f"jury.readiness.{r}") for r, v in readiness.items()},
        default=_unit(table.get("default", 0.5), "jury.default"),
        threshold=_unit(table.get("threshold", 0.5), "jury.threshold"),
    )


def _criteria(items: Any) -> list[Criterion]:
    if not isinstance(items, list) or not items:
        raise ProfileError("the profile needs at least one [[criteria]] entry (a values card)")
    out = []
    for i, c in enumerate(items, 1):
        if not isinstance(c, dict) or "ref" not in c:
            raise ProfileError(f"criteria entry {i} needs a ref (a slug or a criterion event id)")
        policies = c.get("policies", [])
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise ProfileError(f"criteria entry {i}: policies must be a list of strings")
        try:
            out.append(
                Criterion(
                    ref=c["ref"],
                    weight=float(c.get("weight", 1.0)),
                    title=str(c.get("title", "")),
                    description=str(c.get("description", "")),
                    policies=tuple(policies),
                )
            )
        except (TypeError, ValueError) as e:
            raise ProfileError(f"criteria entry {i}: {e}") from None
    return out


def parse_config(data: Mapping[str, Any], path: Path | None = None) -> OwnerConfig:
    """A profile from already parsed TOML."""
    extra = sorted(set(data) - {"name", "notes", "criteria", "guard", "jury"})
    if extra:
        raise ProfileError(f"unknown keys {extra}; expected name, notes, [[criteria]], [guard], [jury]")
    try:
        profile = OwnerProfile(
            _criteria(data.get("criteria")),
            name=str(data.get("name", "")),
            notes=str(data.get("notes", "")),
        )
    except ValueError as e:
        raise ProfileError(str(e)) from None
    return OwnerConfig(path, profile, _guard(data.get("guard")), _jury(data.get("jury")))


def load_config(path: str | os.PathLike[str]) -> OwnerConfig:
    """Read and check a profile file; :class:`ProfileError` says what is wrong in words."""
    target = Path(path)
    try:
        raw = target.read_bytes()
    except OSError as e:
        raise ProfileError(f"{target}: cannot read the profile ({e.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ProfileError(f"{target}: not valid TOML ({e})") from None
    try:
        return parse_config(data, target)
    except ProfileError as e:
        raise ProfileError(f"{target}: {e}") from None
