"""The simulated world of ``forum demo``: owners with hidden values, communities, proposals.

Everything hidden lives here and never reaches the forum: the owners' true
weights, the proposals' true effects, the measurement noise. The demo measures
how well the forum and the agents recover it.

**Owners.** Each owner belongs to one of the corpus camps (chosen uniformly) and
one of the 12 communities. Their hidden weight on criterion ``c`` is
``min(1, camp weight * exp(N(0, SPREAD)) + |N(0, 0.05)|) ** SHARPNESS``
(``SPREAD`` 0.6, ``SHARPNESS`` 2.5): a camp, an individual twist the crowd
cannot fit, and a few concerns that count far more than the rest, as with
people. Their profile (what they tell their agent) names their
``STATED_CRITERIA`` (4) highest-weighted criteria with those weights rounded to
0.05 (at least 0.05); the other six still count in their true ratings, and the
agent has to learn that part.

**Priority shifts** (a new child, a new job). ``SHIFT_SHARE`` (25 %) of the
owners change priorities once, at a moment drawn uniformly in ``SHIFT_WINDOW``
(25 % to 60 % of the run): a criterion outside their two heaviest becomes
``SHIFT_BOOST`` (2) times their heaviest weight, and the two heaviest are
halved. From then on their true ratings use the new weights. They do not tell
their agent: the agent has to notice (a priority-shift notice); when it does,
the owner answers by stating their new four heaviest criteria
(:meth:`SimOwner.restate`). A notice to an owner who has not shifted is
dismissed.

**True ratings.** For proposal ``p`` with corpus values ``v_c`` and mean true
effect ``e`` over the 12 communities (each community has the effect of its
type), owner ``o`` with effect sensitivity ``g_o ~ U(1, 2)`` scores

* criterion ``c``: ``s_c = clip(v_c + g_o * e + eps_c, -1, 1)``, ``eps_c ~ N(0, 0.1)``
  fixed per (owner, proposal, criterion);
* overall: ``r = clip(sum_c w_c s_c / sum_c w_c + eta, -1, 1)`` over all ten
  criteria with the hidden weights, ``eta ~ N(0, 0.05)`` fixed per (owner, proposal).

So whether a proposal *works* (its true effect) moves every owner's rating,
and only outcome reports reveal it. When an owner gives feedback they report
``r`` and their stated criteria's ``s_c``, each plus fresh ``N(0, 0.03)`` noise.

**Outcomes.** A community that tries a proposal measures ``effect of its type +
N(0, 0.05)`` and reports each corpus metric as ``observed = baseline * (1 +
measured)`` (``1 - measured`` when lower is better), ``n`` ~ U(40, 400); its
verdict is ``success`` when the measured effect is at least 0.1, ``failure``
below 0, ``mixed`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

import numpy as np

__all__ = [
    "STATED_CRITERIA",
    "Community",
    "Proposal",
    "SimOwner",
    "load_corpus",
    "make_owners",
    "stable_normal",
    "top_stated",
]

STATED_CRITERIA: Final = 4
SPREAD: Final = 0.6
SHARPNESS: Final = 2.5
SHIFT_SHARE: Final = 0.25
SHIFT_WINDOW: Final = (0.25, 0.6)
SHIFT_BOOST: Final = 2.0
EFFECT_NOISE: Final = 0.05
FEEDBACK_NOISE: Final = 0.03
SUCCESS_AT: Final = 0.1


@cache
def load_corpus() -> dict[str, Any]:
    """The demo corpus shipped in ``clients/demo/data/corpus.json``."""
    text = resources.files("clients.demo").joinpath("data").joinpath("corpus.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def stable_normal(*parts: object) -> float:
    """A standard normal number fixed by ``parts`` (the same on every run and machine)."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    u2 = int.from_bytes(digest[8:16], "big") / 2**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@dataclass(frozen=True)
class Community:
    slug: str
    name: str
    about: str
    place: str
    type: str


@dataclass(frozen=True)
class Proposal:
    """A corpus proposal with its hidden truth."""

    slug: str
    title: str
    summary: str
    text: str
    tags: tuple[str, ...]
    criteria: tuple[str, ...]
    values: dict[str, float]
    metrics: tuple[dict[str, Any], ...]
    true_effect: dict[str, float]
    mean_effect: float

    @classmethod
    def from_corpus(cls, p: dict[str, Any], communities: list[Community]) -> Proposal:
        effects = dict(p["true_effect"])
        return cls(
            slug=p["slug"],
            title=p["title"],
            summary=p["summary"],
            text=p["text"],
            tags=tuple(p["tags"]),
            criteria=tuple(p["criteria"]),
            values=dict(p["values"]),
            metrics=tuple(p["metrics"]),
            true_effect=effects,
            mean_effect=float(np.mean([effects[c.type] for c in communities])),
        )


@dataclass
class SimOwner:
    """A simulated person: hidden values, a community, and the profile they state.

    ``shift_at`` (a fraction of the run, or None) is when their weights become
    ``shifted`` (see the module doc); times below are fractions of the run.
    """

    index: int
    camp: str
    community: str
    weights: dict[str, float]
    gamma: float
    seed: int
    stated: dict[str, float] = field(default_factory=dict)
    shift_at: float | None = None
    shifted: dict[str, float] = field(default_factory=dict)
    _true: dict[Any, float] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stated:
            self.stated = top_stated(self.weights)

    def weights_at(self, frac: float) -> dict[str, float]:
        """The owner's hidden weights at ``frac`` of the run."""
        if self.shift_at is not None and frac >= self.shift_at:
            return self.shifted
        return self.weights

    def has_shifted(self, frac: float) -> bool:
        return self.shift_at is not None and frac >= self.shift_at

    def restate(self, frac: float) -> dict[str, float]:
        """The owner answers a priority-shift notice: their four heaviest criteria now."""
        self.stated = top_stated(self.weights_at(frac))
        return self.stated

    def criterion_score(self, p: Proposal, criterion: str) -> float:
        eps = 0.1 * stable_normal(self.seed, "eps", self.index, p.slug, criterion)
        return float(
            np.clip(p.values.get(criterion, 0.0) + self.gamma * p.mean_effect + eps, -1, 1)
        )

    def true_score(self, p: Proposal, frac: float = 1.0) -> float:
        """The owner's true overall rating of ``p`` at ``frac`` of the run (default: at its end)."""
        weights = self.weights_at(frac)
        key = (p.slug, p.mean_effect, tuple(weights.items()))
        cached = self._true.get(key)
        if cached is None:
            total = sum(weights.values())
            s = sum(w * self.criterion_score(p, c) for c, w in weights.items()) / total
            eta = 0.05 * stable_normal(self.seed, "eta", self.index, p.slug)
            cached = self._true[key] = float(np.clip(s + eta, -1, 1))
        return cached

    def feedback(
        self, p: Proposal, rng: np.random.Generator, frac: float = 1.0
    ) -> tuple[float, dict[str, float]]:
        """What the owner tells their agent about ``p`` at ``frac`` of the run: overall and
        stated criteria, slightly noisy."""

        def noisy(x: float) -> float:
            return round(float(np.clip(x + rng.normal(0, FEEDBACK_NOISE), -1, 1)), 3)

        return noisy(self.true_score(p, frac)), {
            c: noisy(self.criterion_score(p, c)) for c in self.stated
        }


def top_stated(weights: dict[str, float]) -> dict[str, float]:
    """The ``STATED_CRITERIA`` heaviest criteria, weights rounded to 0.05 (at least 0.05)."""
    top = sorted(weights, key=lambda c: (-weights[c], c))[:STATED_CRITERIA]
    return {c: max(0.05, round(weights[c] * 20) / 20) for c in top}


def make_owners(n: int, seed: int, corpus: dict[str, Any] | None = None) -> list[SimOwner]:
    """``n`` owners with hidden values: a camp, individual weights, some shifting (module doc)."""
    corpus = corpus or load_corpus()
    rng = np.random.default_rng([seed, 1])
    shifts = np.random.default_rng([seed, 2])
    criteria = [c["slug"] for c in corpus["criteria"]]
    camps = corpus["camps"]
    communities = [c["slug"] for c in corpus["communities"]]
    owners = []
    for i in range(n):
        camp = camps[int(rng.integers(len(camps)))]
        weights = {}
        for c in criteria:
            base = camp["weights"].get(c, 0.0)
            w = min(1.0, base * math.exp(rng.normal(0, SPREAD)) + abs(rng.normal(0, 0.05)))
            weights[c] = round(w**SHARPNESS, 4)
        shift_at, shifted = None, {}
        if shifts.random() < SHIFT_SHARE:
            shift_at = float(shifts.uniform(*SHIFT_WINDOW))
            order = sorted(weights, key=lambda c: (-weights[c], c))
            new = order[2 + int(shifts.integers(len(order) - 2))]
            shifted = dict(weights)
            for c in order[:2]:
                shifted[c] = round(weights[c] / 2, 4)
            shifted[new] = round(SHIFT_BOOST * weights[order[0]], 4)
        owners.append(
            SimOwner(
                index=i,
                camp=camp["slug"],
                community=communities[int(rng.integers(len(communities)))],
                weights=weights,
                gamma=float(rng.uniform(1.0, 2.0)),
                seed=seed,
                shift_at=shift_at,
                shifted=shifted,
            )
        )
    return owners


def communities_of(corpus: dict[str, Any]) -> list[Community]:
    return [
        Community(c["slug"], c["name"], c["about"], c["place"], c["type"])
        for c in corpus["communities"]
    ]


def proposals_of(corpus: dict[str, Any]) -> list[Proposal]:
    comms = communities_of(corpus)
    return [Proposal.from_corpus(p, comms) for p in corpus["proposals"]]


def measured_metrics(
    p: Proposal, measured: float, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """The metrics a community reports after measuring effect ``measured`` (see module doc)."""
    out = []
    for m in p.metrics:
        base = float(m["baseline"])
        factor = 1 + measured if m["higher_is_better"] else 1 - measured
        out.append(
            {
                "name": m["name"],
                "unit": m["unit"],
                "baseline": base,
                "observed": round(base * factor, 4),
                "n": int(rng.integers(40, 401)),
                "higher_is_better": bool(m["higher_is_better"]),
            }
        )
    return out


def verdict_for(measured: float) -> str:
    if measured >= SUCCESS_AT:
        return "success"
    if measured < 0:
        return "failure"
    return "mixed"
