"""The twelve communities in the run: they pick proposals, try them and report outcomes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from clients.demo import governance
from clients.demo.config import CALENDAR_DAYS, CALENDAR_START, EXPLORE, TRIAL_GAP, TRIAL_LENGTH
from clients.demo.state import Trial
from clients.demo.world import measured_metrics, verdict_for
from clients.sdk import builders

if TYPE_CHECKING:
    from clients.demo.sim import Demo


def on_trial(demo: Demo, slug: str, t: float) -> None:
    cfg = demo.config
    community = next(c for c in demo.communities if c.slug == slug)
    demo.push(t + float(demo.rng.uniform(0.7, 1.3)) * TRIAL_GAP * cfg.duration, "trial", slug)
    board = demo.conns[0].board
    untried = [
        pid for pid in board.order if pid in demo.proposal_ids and pid not in demo.trials[slug]
    ]
    if not untried or t + TRIAL_LENGTH * cfg.duration > cfg.duration:
        return
    if demo.rng.random() < EXPLORE:
        pid = untried[int(demo.rng.integers(len(untried)))]
    else:
        liked = governance.pick_like_yours(demo, slug, untried)
        pid = liked or max(untried, key=lambda i: (board.results[i].shrunk_mean or 0.0, i))
    demo.trials[slug].add(pid)
    p = demo.proposals[demo.slug_index[demo.proposal_ids[pid]]]
    trial = Trial(community, demo.community_keys[slug], p, pid, t)
    start = date_of(demo, t).isoformat()
    adoption = builders.adoption(
        trial.key, proposal=pid, start=start, params={"pilot-weeks": str(int(TRIAL_LENGTH * 104))}
    )
    trial.adoption = adoption.id
    ev = builders.outcome(
        trial.key,
        proposal=pid,
        status="running",
        period_start=start,
        summary=f"{community.name} started a pilot of this proposal.",
        adoption=adoption.id,
        milestone="started",
    )
    demo.counts.running += 1
    demo.gov.adoptions += 1
    demo.publish_later(0, [adoption, ev])
    demo.push(t + TRIAL_LENGTH * cfg.duration, "completion", trial)


def on_completion(demo: Demo, trial: Trial, t: float) -> None:
    measured = trial.proposal.true_effect[trial.community.type] + float(demo.rng.normal(0, 0.05))
    verdict = verdict_for(measured)
    ev = builders.outcome(
        trial.key,
        proposal=trial.proposal_id,
        status="completed",
        verdict=verdict,
        period_start=date_of(demo, trial.started).isoformat(),
        period_end=date_of(demo, t).isoformat(),
        metrics=measured_metrics(trial.proposal, measured, demo.rng),
        summary=f"{trial.community.name} completed its pilot: {verdict}.",
        adoption=trial.adoption or None,
        milestone="completed" if trial.adoption else None,
    )
    demo.counts.running -= 1
    demo.counts.completed += 1
    events = [ev]
    if verdict == "failure":  # a failed pilot leaves the rule set
        events.append(
            builders.adoption(trial.key, proposal=trial.proposal_id, action="drop", start=date_of(demo, t).isoformat())
        )
        demo.gov.drops += 1
    demo.publish_later(0, events)
    governance.rate_report(demo, ev, trial.key.did, t)


def date_of(demo: Demo, t: float) -> dt.date:
    return CALENDAR_START + dt.timedelta(days=int(t / demo.config.duration * CALENDAR_DAYS))
