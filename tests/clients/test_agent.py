"""The owner's agent: privacy of every frame it sends, its model, ratings and re-ratings, notices."""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from clients.agent.model import Board, OwnerModel, Results
from clients.agent.owner import (
    Criterion,
    Notice,
    OwnerProfile,
    PrioritiesConflictNotice,
    PriorityShiftNotice,
    RequestConflictNotice,
)
from clients.agent.owner_agent import CONFLICT_THRESHOLD, OwnerAgent
from clients.demo.world import load_corpus
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Client
from clients.sdk.keys import derive_key
from tests.support.timeouts import timeout

AUTHOR = derive_key("tests/agent", "author")
AGENT = derive_key("tests/agent", "agent")
GREEN = {
    "environmental-sustainability": 1.0,
    "fairness-equity": 0.8,
    "fiscal-prudence": 0.1,
    "individual-liberty": 0.1,
}
LEAN = {
    "environmental-sustainability": 0.1,
    "fairness-equity": 0.1,
    "fiscal-prudence": 1.0,
    "individual-liberty": 0.8,
}
T0 = 1_700_000_000_000


def corpus_events(
    n: int | None = None, *, seed: int = 0
) -> list[tuple[dict[str, Any], SignedEvent]]:
    """Corpus proposals (shuffled by ``seed``) signed by AUTHOR."""
    proposals = list(load_corpus()["proposals"])
    np.random.default_rng(seed).shuffle(proposals)
    out = []
    for i, p in enumerate(proposals[:n]):
        ev = builders.proposal(
            AUTHOR,
            title=p["title"],
            summary=p["summary"],
            text=p["text"],
            tags=p["tags"],
            criteria=p["criteria"],
            created_at=T0 + i,
        )
        out.append((p, ev))
    return out


def mean_effect(p: dict[str, Any]) -> float:
    return float(np.mean(list(p["true_effect"].values())))


def owner_scores(
    p: dict[str, Any], weights: dict[str, float], rng: np.random.Generator, effect: float = 0.0
) -> tuple[float, dict[str, float]]:
    """A scripted owner: per-criterion scores are the proposal's values (plus ``effect``), overall
    their weighted mean; a little noise on each."""
    crit = {
        c: float(np.clip(p["values"].get(c, 0.0) + effect + rng.normal(0, 0.03), -1, 1))
        for c in weights
    }
    overall = sum(weights[c] * crit[c] for c in weights) / sum(weights.values())
    return float(np.clip(overall + rng.normal(0, 0.03), -1, 1)), crit


def scores_view(
    target: str, *, seq: int, effect: float | None = None, **extra: Any
) -> dict[str, Any]:
    """A SCORES view as the forum publishes it (fields the agent reads)."""
    view: dict[str, Any] = {
        "target": target,
        "as_of_seq": seq,
        "count": extra.pop("count", 0),
        "mean": None,
        "shrunk_mean": None,
        "criteria": {},
        "bridging": None,
        "groups": None,
        "outcomes": None,
    }
    if effect is not None:
        view["outcomes"] = {
            "communities": 4,
            "completed": 4,
            "successes": 2,
            "success_rate": 0.5,
            "by_status": {"completed": 4},
            "by_verdict": {},
            "metrics": [{"name": "m", "reports": 4, "mean": effect, "se": 0.02}],
        }
    view.update(extra)
    return view


# --------------------------------------------------------------------------- the owner's profile


def test_the_profile_file_is_the_owners_alone(tmp_path: Path) -> None:
    profile = OwnerProfile(
        [Criterion("affordability", 1.0, title="Affordability"), Criterion("wellbeing", 0.5)],
        name="Ada",
        notes="private",
    )
    path = profile.save(tmp_path / "owner.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = OwnerProfile.load(path)
    assert again.weights == pytest.approx({"affordability": 2 / 3, "wellbeing": 1 / 3})
    assert again.name == "Ada" and again.criteria[0].title == "Affordability"
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        OwnerProfile.load(path)


def test_a_criterion_must_be_a_slug_or_an_event_id() -> None:
    with pytest.raises(ValueError):
        Criterion("Not A Slug", 1.0)
    with pytest.raises(ValueError):
        Criterion("affordability", 0.0)
    Criterion("0" * 64, 1.0)


# --------------------------------------------------------------------------- priority shifts


def _scripted_shift(
    seed: int, *, shift_at: int | None, answer: Callable[[OwnerAgent, Notice], Any] | None = None
) -> tuple[OwnerAgent, list[tuple[int, Notice]]]:
    """Feed every corpus proposal to an agent; the owner's weights flip from GREEN to LEAN at ``shift_at``."""
    agent = OwnerAgent(AGENT, OwnerProfile.from_weights(GREEN), seed=seed)
    rng = np.random.default_rng(seed)
    raised: list[tuple[int, Notice]] = []
    for i, (p, ev) in enumerate(corpus_events(seed=seed)):
        agent.observe(ev.event)
        weights = GREEN if shift_at is None or i < shift_at else LEAN
        score, crit = owner_scores(p, weights, rng)
        notice = agent.feedback(ev.id, score, crit, note=f"step {i}")
        if notice is not None:
            raised.append((i, notice))
            if answer is not None:
                answer(agent, notice)
    return agent, raised


@pytest.mark.parametrize("seed", range(4))
def test_a_priority_shift_is_raised_soon_after_it_happens_and_not_before(seed: int) -> None:
    agent, raised = _scripted_shift(seed, shift_at=20)
    assert raised, "no notice although the owner's priorities flipped"
    first, notice = raised[0]
    assert 20 <= first <= 24, f"notice at feedback {first}, the shift was at 20"
    assert len(raised) == 1, "a pending notice must not be repeated"
    assert isinstance(notice, PriorityShiftNotice)
    assert notice.kind == "priority-shift" and "priorities" in notice.message
    assert notice.recent_error > 2 * notice.usual_error
    assert agent.notices == [notice]
    # By now (21 feedbacks after the shift) the suggestion has the owner's new priorities.
    suggested = agent.suggested_weights()
    assert suggested["fiscal-prudence"] + suggested["individual-liberty"] > 0.7
    adopted = agent.accept(notice)
    assert adopted == suggested
    assert agent.profile.weights["fiscal-prudence"] == pytest.approx(suggested["fiscal-prudence"])
    assert agent.model.weights == agent.profile.weights
    assert not agent.watch.pending and not agent.watch.residuals


@pytest.mark.parametrize("seed", range(4))
def test_a_steady_owner_gets_no_notice(seed: int) -> None:
    _, raised = _scripted_shift(seed, shift_at=None)
    assert raised == []


def test_accepting_the_shift_stops_the_notices() -> None:
    agent, raised = _scripted_shift(1, shift_at=20, answer=lambda a, n: a.accept(n))  # type: ignore[arg-type]
    assert [i for i, _ in raised][:1] and 20 <= raised[0][0] <= 24
    # After accepting, the profile follows the owner and later feedback agrees with it.
    assert len(raised) <= 2
    w = agent.profile.weights
    assert w["fiscal-prudence"] + w["individual-liberty"] > w["environmental-sustainability"]


def test_a_dismissed_notice_leaves_the_profile_and_quiets_the_watch_for_a_window() -> None:
    agent, raised = _scripted_shift(2, shift_at=20, answer=lambda a, n: a.dismiss(n))  # type: ignore[arg-type]
    assert 20 <= raised[0][0] <= 24
    assert all(b[0] - a[0] >= agent.watch.window for a, b in itertools.pairwise(raised))
    assert agent.profile.weights == OwnerProfile.from_weights(GREEN).weights
    assert not agent.watch.pending or len(raised) > 1


# --------------------------------------------------------------------------- requests that contradict the past


def _trained_agent(
    n_feedback: int = 12, seed: int = 3
) -> tuple[OwnerAgent, list[tuple[dict[str, Any], SignedEvent]]]:
    events = corpus_events(seed=seed)
    agent = OwnerAgent(AGENT, OwnerProfile.from_weights(GREEN), seed=seed, rerate_interval=0)
    rng = np.random.default_rng(seed)
    for _, ev in events:
        agent.observe(ev.event)
    for p, ev in events[:n_feedback]:
        score, crit = owner_scores(p, GREEN, rng)
        agent.feedback(ev.id, score, crit)
    return agent, events


def test_a_request_against_the_owners_record_is_questioned_not_published() -> None:
    agent, events = _trained_agent()
    held_out = events[12:]
    predicted = {ev.id: agent.predict(ev.id).overall for _, ev in held_out}
    target = min(predicted, key=lambda k: predicted[k])  # what the owner would like least
    seen: list[Notice] = []
    agent.on_notice = seen.append
    result = agent.request_rating(target, 1.0)
    assert isinstance(result, RequestConflictNotice)
    assert seen == [result]
    assert result.requested == 1.0 and result.predicted < 1.0 - CONFLICT_THRESHOLD
    assert target not in agent.published and target not in agent.pinned
    n_history = len(agent.history)
    confirmed = agent.request_rating(target, 1.0, confirm=True)
    assert isinstance(confirmed, SignedEvent)
    assert confirmed.body["target"] == target and confirmed.body["score"] == 1.0
    assert target in agent.pinned and len(agent.history) == n_history + 1
    assert all(r.body["target"] != target for r in agent.due_ratings())  # never re-rated on its own


def test_a_request_in_line_with_the_past_is_published_at_once() -> None:
    agent, events = _trained_agent()
    target = events[20][1].id
    wish = float(np.clip(agent.predict(target).overall + 0.1, -1, 1))
    result = agent.request_rating(target, wish)
    assert isinstance(result, SignedEvent)
    assert result.body["score"] == pytest.approx(wish)


def test_new_priorities_that_contradict_the_past_are_questioned() -> None:
    agent, _ = _trained_agent()
    notice = agent.set_priorities(LEAN)
    assert isinstance(notice, PrioritiesConflictNotice)
    assert notice.requested_error > notice.current_error
    assert agent.profile.weights["environmental-sustainability"] > 0.4  # unchanged
    assert agent.set_priorities(LEAN, confirm=True) is None
    assert agent.profile.weights["fiscal-prudence"] == pytest.approx(0.5)
    # Close to the record: applied without a question.
    agent2, _ = _trained_agent()
    assert agent2.set_priorities({**GREEN, "fairness-equity": 0.7}) is None


# --------------------------------------------------------------------------- the model and the stream


def _effect_world(
    seed: int,
) -> tuple[Board, list[tuple[dict[str, Any], SignedEvent]], dict[str, float]]:
    """A board with every proposal, the owner's true scores depending on the true effect."""
    board = Board()
    events = corpus_events(seed=seed)
    rng = np.random.default_rng(seed)
    truth = {}
    for p, ev in events:
        board.add_proposal(ev.event)
        truth[ev.id] = owner_scores(p, GREEN, rng, effect=1.5 * mean_effect(p))[0]
    return board, events, truth


@pytest.mark.parametrize("seed", range(3))
def test_streamed_outcomes_make_the_predictions_better(seed: int) -> None:
    board, events, truth = _effect_world(seed)
    rng = np.random.default_rng(seed + 100)
    for i, (p, ev) in enumerate(events):  # communities reported on every proposal
        board.add_scores(scores_view(ev.id, seq=i + 1, effect=mean_effect(p) + rng.normal(0, 0.02)))
    history = []
    with_stream = OwnerModel(OwnerProfile.from_weights(GREEN).weights, seed=seed)
    without = OwnerModel(OwnerProfile.from_weights(GREEN).weights, seed=seed, use_stream=False)
    frng = np.random.default_rng(seed + 200)
    from clients.agent.owner import Feedback

    for p, ev in events[:20]:
        score, crit = owner_scores(p, GREEN, frng, effect=1.5 * mean_effect(p))
        history.append(Feedback(ev.id, score, crit))
        with_stream.learn(board, history)
        without.learn(board, history)
    held = [board.index[ev.id] for _, ev in events[20:]]
    true = np.array([truth[ev.id] for _, ev in events[20:]])
    err_with = np.abs(with_stream.predict_all(board)[0][held] - true).mean()
    err_without = np.abs(without.predict_all(board)[0][held] - true).mean()
    assert err_with < 0.8 * err_without, (err_with, err_without)


def test_untrusted_score_views_are_clipped_or_ignored() -> None:
    r = Results()
    r.update_from_scores(
        {
            "as_of_seq": 3,
            "count": "many",
            "mean": float("nan"),
            "shrunk_mean": 7.5,
            "criteria": {"a": {"mean": "x"}, "b": {"mean": -9}, 5: {"mean": 0.1}, "c": 3},
            "bridging": {"score": True},
            "groups": ["x"],
            "outcomes": {"communities": -1, "metrics": [{"mean": 1e308}, "junk", {"mean": None}]},
        }
    )
    assert r.count == 0 and r.mean is None and r.shrunk_mean == 1.0
    assert r.criteria == {"b": -1.0} and r.bridging is None and r.consensus is None
    assert r.communities == 0 and r.effect == 10.0
    assert not np.isinf(r.features()).any()  # NaN = not known yet; the board imputes it
    r.update_from_scores({"as_of_seq": 2, "count": 5})  # older than what we hold: ignored
    assert r.count == 0
    board = Board()
    _, ev = corpus_events(1)[0]
    board.add_proposal(ev.event)
    board.add_scores(
        {"target": ev.id, "as_of_seq": 1, "shrunk_mean": "x", "bridging": {"score": 0.5}}
    )
    assert (
        np.isfinite(board.shared()).all() and np.isfinite(board.criterion_means("wellbeing")).all()
    )
    assert board.add_scores({"target": "0" * 64}) is None  # not a post we know
    assert board.add_scores(["not", "a", "view"]) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rating and re-rating


def test_it_rates_every_new_proposal_except_its_own_and_rerates_on_new_outcomes() -> None:
    board, events, _ = _effect_world(5)
    agent = OwnerAgent(
        AGENT, OwnerProfile.from_weights(GREEN), board=board, seed=5, rerate_interval=0
    )
    assert agent.due_ratings() == []  # no feedback yet: nothing to go on
    rng = np.random.default_rng(5)
    # Results for the first 20 (the ones the owner will judge), none yet for the rest.
    for i, (p, ev) in enumerate(events[:20]):
        board.add_scores(scores_view(ev.id, seq=i + 1, effect=mean_effect(p)))
    for p, ev in events[:20]:
        score, crit = owner_scores(p, GREEN, rng, effect=1.5 * mean_effect(p))
        agent.feedback(ev.id, score, crit)
    own = builders.proposal(AGENT, title="Mine", text="My own idea.", created_at=T0 + 99)
    agent.observe(own.event)
    first = agent.due_ratings(now_ms=T0 + 1000)
    targets = [r.body["target"] for r in first]
    assert sorted(targets) == sorted(ev.id for _, ev in events)  # not its own proposal
    for r in first:
        assert set(r.body) == {"target", "score", "criteria", "note"}
        assert set(r.body["criteria"]) == set(GREEN)
        assert r.event.author == AGENT.did
    assert agent.due_ratings(now_ms=T0 + 2000) == []  # nothing moved
    # Outcome reports arrive for the rest: predictions move, material moves are re-rated.
    before = {ev.id: agent.predict(ev.id) for _, ev in events[20:]}
    for i, (p, ev) in enumerate(events[20:]):
        board.add_scores(scores_view(ev.id, seq=100 + i, effect=mean_effect(p) * 1.5 + 0.2))
    again = agent.due_ratings(now_ms=T0 + 3000)
    assert again, "new outcome reports changed nothing"
    moved = {ev.id for _, ev in events[20:]}
    for r in again:
        t = r.body["target"]
        assert t in moved
        change = abs(agent.predict(t).overall - before[t].overall)
        crit_change = max(abs(agent.predict(t).criteria[c] - before[t].criteria[c]) for c in GREEN)
        assert change >= 0.1 - 1e-3 or crit_change >= 0.2 - 1e-3
        assert r.event.created_at > T0 + 1000  # later than the rating it replaces
    assert agent.due_ratings(now_ms=T0 + 4000) == []


def test_rerating_waits_for_the_interval() -> None:
    now = [0.0]
    board, events, _ = _effect_world(6)
    agent = OwnerAgent(
        AGENT,
        OwnerProfile.from_weights(GREEN),
        board=board,
        seed=6,
        rerate_interval=30,
        rerate_threshold=1e-6,  # any change is material here
        clock=lambda: now[0],
    )
    rng = np.random.default_rng(6)
    for p, ev in events[:10]:
        agent.feedback(ev.id, *owner_scores(p, GREEN, rng))
    assert len(agent.due_ratings()) == len(events)
    for p, ev in events[10:15]:  # more feedback: every prediction moves a little
        agent.feedback(ev.id, *owner_scores(p, GREEN, rng))
    now[0] = 29.0
    assert agent.due_ratings() == []
    now[0] = 31.0
    assert len(agent.due_ratings()) > len(events) // 2


# --------------------------------------------------------------------------- privacy: every frame sent


SECRETS = (
    "SECRET-OWNER-NAME-5521",
    "SECRET-NOTES-8812",
    "SECRET-FEEDBACK-0193",
    "SECRET-CARD-4410",
)


# --------------------------------------------------------------------------- against a real forum


COMMUNITY = derive_key("tests/agent", "community")


def _completed(proposal: str, effect: float, day: int) -> SignedEvent:
    return builders.outcome(
        COMMUNITY,
        proposal=proposal,
        status="completed",
        verdict="success" if effect >= 0.1 else "failure" if effect < 0 else "mixed",
        period_start=f"2026-01-{day:02d}",
        period_end=f"2026-02-{day:02d}",
        metrics=[
            builders.metric(
                "uptake",
                unit="%",
                baseline=10.0,
                observed=10.0 * (1 + effect),
                n=100,
                higher_is_better=True,
            )
        ],
    )


@pytest.mark.slow
async def test_against_a_real_forum_it_rates_rerates_on_outcomes_and_sends_nothing_private(
    forum_serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from websockets.asyncio.client import ClientConnection

    sent: list[str] = []
    original_send = ClientConnection.send

    async def recording_send(
        self: ClientConnection, message: Any, *args: Any, **kwargs: Any
    ) -> None:
        sent.append(message if isinstance(message, str) else bytes(message).decode())
        await original_send(self, message, *args, **kwargs)

    monkeypatch.setattr(ClientConnection, "send", recording_send)
    events = corpus_events(6, seed=11)
    ids = [ev.id for _, ev in events]
    effects = [0.3, -0.1, 0.2]
    profile = OwnerProfile(
        [
            Criterion("affordability", 0.7331, description=SECRETS[3]),
            Criterion("wellbeing", 0.4127),
        ],
        name=SECRETS[0],
        notes=SECRETS[1],
    )
    agent = OwnerAgent(AGENT, profile, seed=11, rerate_interval=0, rerate_threshold=1e-6)
    stop = asyncio.Event()
    async with (
        asyncio.timeout(timeout(60)),
        Client(forum_serve.ws_url) as world,
        Client(forum_serve.ws_url) as mine,
    ):
        await world.publish(
            builders.community(COMMUNITY, name="Test Row", about="A test community.")
        )
        await world.publish_many([ev for _, ev in events])
        await world.publish_many([_completed(ids[i], e, i + 1) for i, e in enumerate(effects)])
        await mine.publish(agent.profile_event("Agent 11"))
        runner = asyncio.create_task(agent.run(mine, stop=stop, tick=0.1, refit_interval=0.2))
        try:
            while not (  # noqa: ASYNC110 - the board fills from the agent's own subscriptions
                len(agent.board.order) == 6
                and all(agent.board.results[i].effect is not None for i in ids[:3])
            ):
                await asyncio.sleep(0.02)
            for i, e in enumerate(effects):
                crit = {"affordability": 0.2 + e, "wellbeing": 0.1 + e}
                agent.feedback(ids[i], 0.15 + 1.5 * e, crit, note=f"{SECRETS[2]} {i}")
            while len(agent.published) < 6:  # noqa: ASYNC110 - the agent's publish loop fills it
                await asyncio.sleep(0.02)
            first = agent.published[ids[4]].event_id
            await world.publish(_completed(ids[4], 0.5, 9))
            while agent.published[ids[4]].event_id == first:  # noqa: ASYNC110 - waits for the re-rating
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # let the publish loop get its OK
        finally:
            stop.set()
            await runner
        # The re-rating was handed to the publish loop; under load its OK can take a
        # while, so ask the forum until it holds it (or the outer timeout fails the test).
        while True:
            stored = await world.query({"kinds": ["rating"], "authors": [AGENT.did]})
            if [e.body["target"] for _, e in stored].count(ids[4]) >= 2:
                break
            await asyncio.sleep(0.1)
    targets = [e.body["target"] for _, e in stored]
    assert sorted(set(targets)) == sorted(ids)
    assert targets.count(ids[4]) >= 2, "no re-rating after the new outcome report"
    mine_frames = [orjson.loads(f) for f in sent]
    payloads = [f[1]["payload"] for f in mine_frames if f[0] == "PUBLISH"]
    text = "\n".join(sent + payloads)  # the frames as sent, and the payloads they carry
    for secret in SECRETS:
        assert secret not in text
    # Nor the normalized weights (0.7331 / 1.1458 = 0.6398..., 0.4127 / 1.1458 = 0.3602...):
    # to four places, since published scores have three and "0.36" may be a criterion score.
    for needle in ('"weight', '"owner"', "0.7331", "0.4127", "0.6398", "0.3602"):
        assert needle not in text
    for frame in mine_frames:
        if frame[0] == "PUBLISH":
            payload = orjson.loads(frame[1]["payload"])
            if payload["author"] == AGENT.did and payload["kind"] == "rating":
                assert set(payload["body"]) == {"target", "score", "criteria", "note"}
                assert set(payload["body"]["criteria"]) == {"affordability", "wellbeing"}
                # The reason names the criteria that drove the score, from the published scores only.
                note = payload["body"]["note"]
                assert note.startswith(f"{payload['body']['score']:+.2f} overall")
                assert "affordability" in note or "no criterion" in note


def test_reason_names_the_criteria_that_drove_the_score_and_nothing_private() -> None:
    from clients.agent.reasons import reason

    weights = {"affordability": 0.7331, "wellbeing": 0.2669, "safety": 0.0001}
    note = reason(0.42, {"affordability": 0.61, "wellbeing": -0.3, "safety": 0.9}, weights)
    assert note == "+0.42 overall, mostly for affordability (+0.61); against: wellbeing (-0.30)."  # safety weighs nothing
    assert "0.7331" not in note and "0.2669" not in note
    assert reason(-0.5, {"affordability": -0.8}, weights).startswith("-0.50 overall, mostly against affordability")
    assert "no criterion" in reason(0.0, {"affordability": 0.0}, weights)
