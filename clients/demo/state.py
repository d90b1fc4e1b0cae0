"""What the simulation keeps per owner, per trial and in total."""

from __future__ import annotations

from dataclasses import dataclass, field

from clients.agent.model import OwnerModel
from clients.agent.owner_agent import OwnerAgent
from clients.demo.world import Community, Proposal, SimOwner
from clients.sdk.keys import Key


@dataclass
class Member:
    """One simulated owner with their agent and shadow model."""

    owner: SimOwner
    agent: OwnerAgent
    shadow: OwnerModel
    conn: int
    feedback_times: list[float]
    given: set[str] = field(default_factory=set)
    since_shift: int = 0
    """Pieces of feedback given since the owner's priority shift (0 before it)."""
    noticed: int | None = None
    """``since_shift`` when the agent's priority-shift notice came (None: not yet)."""


@dataclass
class Trial:
    community: Community
    key: Key
    proposal: Proposal
    proposal_id: str
    started: float
    adoption: str = ""


@dataclass
class Counts:
    proposals: int = 0
    ratings: int = 0
    rerates: int = 0
    refused: int = 0
    running: int = 0
    completed: int = 0
    feedback: int = 0
    notices: int = 0
    false_notices: int = 0
    score_frames: int = 0
    replies: int = 0
    amendments: int = 0
