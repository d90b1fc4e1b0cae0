"""The running sums (forum/scores/incremental.py) give every target the figures the
whole cheap document gives it, after every event of a log with re-ratings,
retracted ratings, retracted targets and retracted outcome reports."""

from __future__ import annotations

import math
import random
from typing import Any

from forum.protocol.events import Event, Limits, verify_envelope
from forum.scores.documents import build_index, cheap_document, target_view
from forum.scores.incremental import CheapState
from forum.scores.ledger import Ledger
from tests.forum.helpers import Signer, community, event_id, outcome, proposal, rating

NOW = 1_780_000_000_000


def _event(env: dict[str, str]) -> Event:
    return verify_envelope(env, limits=Limits(max_future_ms=10**12), now_ms=NOW)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _log(rng: random.Random) -> list[dict[str, str]]:
    authors = [Signer(f"author-{i}") for i in range(3)]
    raters = [Signer(f"rater-{i}") for i in range(8)]
    town = Signer("town")
    props = [proposal(a, f"Idea {i}") for i, a in enumerate(authors * 2)]
    envs = [*props, community(town)]
    ratings: list[tuple[Signer, dict[str, str]]] = []
    outcomes: list[dict[str, str]] = []
    t = NOW - 10**8
    for _ in range(120):
        t += rng.randrange(1, 1000)
        r = rng.random()
        if r < 0.65:
            who = rng.choice(raters)
            target = event_id(rng.choice(props)) if rng.random() < 0.8 else rng.choice(authors).did
            score = round(rng.uniform(-1, 1), 3)
            created = t if rng.random() < 0.8 else t - 10**6  # some arrive older than the current one
            env = rating(who, target, score, created_at=created, criteria={"fairness": score, "cost": round(rng.uniform(-1, 1), 2)})
            ratings.append((who, env))
            envs.append(env)
        elif r < 0.8 and ratings:
            who, env = rng.choice(ratings)
            envs.append(who.envelope("retraction", {"target": event_id(env)}))
        elif r < 0.9:
            env = outcome(town, event_id(rng.choice(props)), verdict=rng.choice(["success", "failure", "mixed"]))
            outcomes.append(env)
            envs.append(env)
        elif r < 0.95 and outcomes:
            envs.append(town.envelope("retraction", {"target": event_id(rng.choice(outcomes))}))
        else:
            i = rng.randrange(len(props))
            envs.append(authors[i % 3].envelope("retraction", {"target": event_id(props[i])}))
    return envs


def test_running_sums_equal_the_cheap_document_after_every_event() -> None:
    rng = random.Random(16)
    for _ in range(3):
        ledger, state = Ledger(), CheapState()
        for seq, env in enumerate(_log(rng), start=1):
            state.apply(ledger, seq, _event(env))
            if seq % 7 and seq < 140:
                continue
            doc = cheap_document(ledger.snapshot())
            index = build_index(doc, None)
            with_reports = set(ledger.proposals_with_outcomes())
            assert set(state.outcomes) == with_reports  # their summaries are in the fitted document
            stub = {"outcomes": dict.fromkeys(with_reports)}  # which targets the fitted document covers
            every = set(doc["targets"]) | with_reports | set(state.targets)
            for target in every:
                want = target_view(target, doc, stub, index)
                kind = ledger.target_kinds.get(target, "agent" if target.startswith("did:") else "event")
                got = state.part(target, kind)
                if want is None:
                    assert got is None, target
                    continue
                assert got is not None, target
                for key, value in got.items():
                    assert _close(value, want[key]), (seq, target, key, value, want[key])
            assert state.n == sum(doc["aggregates"]["count"])


def test_a_retracted_target_leaves_the_sums_and_a_later_rating_of_it_does_not_count() -> None:
    author, rater = Signer("a"), Signer("r")
    prop = proposal(author)
    events = [prop, rating(rater, event_id(prop), 0.5), author.envelope("retraction", {"target": event_id(prop)}), rating(Signer("r2"), event_id(prop), 0.9)]
    ledger, state = Ledger(), CheapState()
    for seq, env in enumerate(events, start=1):
        state.apply(ledger, seq, _event(env))
    assert state.part(event_id(prop), "proposal") is None
    assert state.n == 0 and state.total == 0.0
