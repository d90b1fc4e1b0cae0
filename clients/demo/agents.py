"""The owners and their agents in the run: proposals, private feedback, refits and ratings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clients.agent.owner import PriorityShiftNotice
from clients.agent.owner_agent import OwnerAgent
from clients.demo.state import Member
from clients.sdk import builders
from clients.sdk.builders import SignedEvent

if TYPE_CHECKING:
    from clients.demo.sim import Demo


def on_proposal(demo: Demo, pi: int, t: float) -> None:
    p = demo.proposals[pi]
    author = demo.members[int(demo.rng.integers(len(demo.members)))]
    ev = builders.proposal(
        author.agent.key,
        title=p.title,
        summary=p.summary,
        text=p.text,
        tags=p.tags,
        criteria=p.criteria,
    )
    demo.proposal_ids[ev.id] = p.slug
    demo.gov.authors[ev.id] = author.owner.index
    demo.ids_by_slug[p.slug] = ev.id
    demo.proposal_authors[ev.id] = author.agent.key.did
    demo.counts.proposals += 1
    demo.publish_later(author.conn, [ev])


def on_feedback(demo: Demo, index: int, t: float) -> None:
    m = demo.members[index]
    board = m.agent.board
    choices = [pid for pid in board.order if pid not in m.given and pid in demo.proposal_ids]
    if not choices:
        return
    pid = choices[int(demo.rng.integers(len(choices)))]
    p = demo.proposals[demo.slug_index[demo.proposal_ids[pid]]]
    frac = t / demo.config.duration
    score, crit = m.owner.feedback(p, demo.rng, frac)
    m.given.add(pid)
    shifted = m.owner.has_shifted(frac)
    if shifted:
        m.since_shift += 1
    before = len(m.agent.notices)
    notice = m.agent.feedback(
        pid, score, crit, note=f"private note of owner {index} about {p.slug}"
    )
    demo.counts.feedback += 1
    demo.counts.notices += len(m.agent.notices) - before
    if isinstance(notice, PriorityShiftNotice):
        answer_notice(demo, m, notice, frac)
    m.shadow.learn(board, m.agent.history)


def answer_notice(demo: Demo, m: Member, notice: PriorityShiftNotice, frac: float) -> None:
    """The owner reads a priority-shift notice: an owner whose priorities did shift states
    their new ones (the agent and its shadow take them); anyone else dismisses it."""
    if m.owner.has_shifted(frac) and m.noticed is None:
        m.noticed = m.since_shift
        m.agent.set_priorities(m.owner.restate(frac), confirm=True)
        m.shadow.weights = dict(m.agent.profile.weights)
        m.shadow.fits += 1
    else:
        demo.counts.false_notices += 1
        m.agent.dismiss(notice)


def refit(m: Member) -> None:
    if m.agent.history:
        m.agent.relearn()
        m.shadow.learn(m.agent.board, m.agent.history)


def rate(demo: Demo, t: float) -> None:
    """Refit agents whose results moved (a slice per tick), then publish every due rating."""
    stale = [m for m in demo.members if m.agent.stale]
    budget = max(1, len(demo.members) // 10)
    for m in stale[:budget]:
        refit(m)
    by_conn: dict[int, list[SignedEvent]] = {}
    agents: dict[str, OwnerAgent] = {}
    for m in demo.members:
        had = len(m.agent.published)
        due = m.agent.due_ratings()
        if due:
            demo.counts.rerates += len(due) - (len(m.agent.published) - had)
            demo.counts.ratings += len(due)
            by_conn.setdefault(m.conn, []).extend(due)
            agents[m.agent.did] = m.agent
    for conn, events in by_conn.items():
        demo.publish_later(conn, events, agents)
