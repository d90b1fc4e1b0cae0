"""Jury draws, sealed votes and tallies: the pure functions docs/arbitration.md specifies.

Nothing here reads a clock or a random source: every value is a function of
event ids, did:keys and seqs, so anyone holding the export gets the same draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

SEED_DOMAIN: Final = "mycelium/draw/v2"
TICKET_DOMAIN: Final = "mycelium/ticket/v1"
VOTE_DOMAIN: Final = "mycelium/vote/v1"


def vote_hash(author: str, case: str, round: int, vote: str, salt: str, reason: str) -> str:
    """The commitment hash (protocol.md 6.12; the same function as forum.protocol.events.vote_hash).

    It binds the juror and the case, so a commitment cannot be copied by another juror
    or reused in another case or round."""
    text = f"{VOTE_DOMAIN}\n{author}\n{case}\n{round}\n{vote}\n{salt}\n{reason}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seed_input(did: str, anchor: str) -> str:
    """One contributor's part of a seed: its did and its *anchor*, the id of its latest
    event at or before the seq the round opened at (fixed before the draw began)."""
    return f"{did} {anchor}"


def draw_seed(case: str, round: int, inputs: Iterable[str]) -> str:
    """The seed of a draw: SHA-256 over the case, the round and the *sorted* inputs of the
    contributors (:func:`seed_input`; sorted, so the order the forum committed their
    events in does not matter). Nothing a contributor publishes after the round opened
    is in it: only *whether* it was among the first to publish, so grinding the nonce or
    content of an event changes no draw (docs/arbitration.md 3.2)."""
    text = "\n".join((SEED_DOMAIN, case, str(round), *sorted(inputs)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ticket(seed: str, did: str) -> str:
    """A candidate's lottery ticket: lower tickets are drawn first within a stratum."""
    return hashlib.sha256(f"{TICKET_DOMAIN}\n{seed}\n{did}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Candidate:
    did: str
    group: int
    owner: str | None
    ticket: str


def draw_order(seed: str, pool: Mapping[str, int], owners: Mapping[str, str | None],
               exclude_owners: Iterable[str] = ()) -> list[Candidate]:  # fmt: skip
    """Every pool member in the order they are summoned (jurors first, then replacements).

    ``pool``: did -> opinion group. Stratified: the next pick comes from the group whose
    share of picks so far (picks / group size) is lowest, ties broken by the lower
    ticket of the groups' next candidates; within a group, by ticket. A candidate whose
    owner (when known) already has an agent in the order, or is in ``exclude_owners``,
    is skipped: one agent per owner.
    """
    strata: dict[int, list[Candidate]] = {}
    for did, g in pool.items():
        strata.setdefault(g, []).append(Candidate(did, g, owners.get(did), ticket(seed, did)))
    for members in strata.values():
        members.sort(key=lambda c: c.ticket)
    sizes = {g: len(m) for g, m in strata.items()}
    nxt = dict.fromkeys(strata, 0)
    picked = dict.fromkeys(strata, 0)
    seen_owners = set(exclude_owners)
    order: list[Candidate] = []
    while True:
        live = [g for g in strata if nxt[g] < sizes[g]]
        if not live:
            return order
        g = min(live, key=lambda g: (picked[g] / sizes[g], strata[g][nxt[g]].ticket))
        c = strata[g][nxt[g]]
        nxt[g] += 1
        if c.owner is not None and c.owner in seen_owners:
            continue
        if c.owner is not None:
            seen_owners.add(c.owner)
        picked[g] += 1
        order.append(c)


@dataclass(frozen=True, slots=True)
class Tally:
    uphold: int
    dismiss: int
    counted: int
    quorum: int
    verdict: str  # "upheld", "dismissed" or "no-quorum"


def tally(votes: Sequence[str], seats: int) -> Tally:
    """Counted votes -> verdict: upheld by a strict majority of counted votes, if at least
    a majority of the seats voted (the quorum); a tie dismisses."""
    up = sum(1 for v in votes if v == "uphold")
    n = len(votes)
    quorum = seats // 2 + 1
    if n < quorum:
        verdict = "no-quorum"
    else:
        verdict = "upheld" if 2 * up > n else "dismissed"
    return Tally(up, n - up, n, quorum, verdict)
