"""A log in which one proposal's less favourable side hovers around +0.3.

Two camps of 8 raters rate 13 proposals (8 liked by both, 4 partisan, 1 rejected), so
standing applies; camp A rates the target +0.8 and camp B about +0.3.  Then, every
``gap`` events, rater B0 re-rates the target alternately ``+0.3 - 0.3`` and
``+0.3 + 0.3``: a fit of each prefix alone puts the target's less favourable side at
about +0.26 and +0.34 in turn, on either side of ``SUPPORT_LEVEL`` (+0.3) and within the
hysteresis margin, so its status flips between "broad_support" and "bridging" with every
swing unless the status keeps its reference.  Between swings, ``gap - 1`` profile updates
of one filler agent (events the scores ignore) move the log past status checkpoints.
"""

from __future__ import annotations

from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import derive_key

T0 = 1_700_000_000_000
BASE = 0.3
AMPLITUDE = 0.3


def oscillating_log(
    swings: int = 12, gap: int = 97, seed: str = "oscillation"
) -> tuple[list[SignedEvent], str, list[int]]:
    """(events in publication order, the target's id, the seq of each swing with seqs 1..n)."""
    k = lambda label: derive_key(seed, label)  # noqa: E731
    t = iter(range(T0, T0 + 10**9, 1000))
    camp_a = [k(f"a/{i}") for i in range(8)]
    camp_b = [k(f"b/{i}") for i in range(8)]
    props = [
        builders.proposal(k(f"p/{i}"), title=f"Idea {i}", text="Text.", created_at=next(t))
        for i in range(14)
    ]
    likes = {i: (0.7, 0.7) for i in range(8)}
    likes |= {8: (0.8, -0.8), 9: (0.8, -0.8), 10: (-0.8, 0.8), 11: (-0.8, 0.8), 12: (-0.7, -0.7)}
    events: list[SignedEvent] = list(props)
    for i, (a, b) in likes.items():
        for camp, score in ((camp_a, a), (camp_b, b)):
            for j, r in enumerate(camp):
                events.append(
                    builders.rating(
                        r,
                        target=props[i].id,
                        score=round(score - 0.05 * (j % 3), 3),
                        created_at=next(t),
                    )
                )
    target = props[13].id
    events += [builders.rating(r, target=target, score=0.8, created_at=next(t)) for r in camp_a]
    events += [
        builders.rating(
            r, target=target, score=round(BASE + 0.1 * (j % 3 - 1), 3), created_at=next(t)
        )
        for j, r in enumerate(camp_b)
    ]
    filler = k("filler")
    swing_seqs = []
    for n in range(swings):
        for f in range(gap - 1):
            events.append(
                builders.agent(
                    filler, name=f"Filler {n}.{f}", about="Pads the log.", created_at=next(t)
                )
            )
        score = BASE + (AMPLITUDE if n % 2 else -AMPLITUDE)
        events.append(
            builders.rating(camp_b[0], target=target, score=round(score, 3), created_at=next(t))
        )
        swing_seqs.append(len(events))
    return events, target, swing_seqs
