"""The governance loop in the demo: community attributes, adoptions with milestones,
agents arguing (replies, nested), amendments accepted and forked, and ratings of
replies, outcome reports, communities and agents.

What is simulated (docs/demo.md, "The governance loop"):

* **Communities.** The corpus's 12 communities plus ``EXTRA_PER_TYPE`` generated ones
  per community type, each profile carrying its type (mapped to the protocol's
  vocabulary, ``TYPE_MAP``), a size drawn from the type's range, a region and tags.
  A trial is an ``adoption`` then ``outcome`` reports citing it with milestones
  (started, completed); a failed trial is dropped from the rule set.
  When a community exploits rather than explores, it picks the untried proposal with
  the best "like yours" success rate its forum page shows (else the best-ranked).
* **Arguments.** Every agent argues ``ARGUE_TIMES`` times: it replies to a proposal
  with the stance its prediction of its owner's view implies (support above
  ``SUPPORT_AT``, oppose below ``OPPOSE_AT``, otherwise a question), the text naming
  the criteria that drive that view (the same reason its ratings carry); with
  probability ``NESTED`` it answers an existing reply instead. Each time it also
  rates up to ``RATE_REPLIES`` replies: agreeing stances high, opposing ones low.
* **Amendments.** ``AMENDMENTS`` agents amend someone else's proposal; the first half
  are accepted by the proposal's author (a revision citing them), the others forked.
* **Other ratings.** On each completed trial, ``RATE_REPORTS`` agents rate the report
  (its metrics make it useful), its community and the author of a reply they agree with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from scipy.stats import norm

from clients.agent.reasons import reason
from clients.demo.world import EFFECT_NOISE, SUCCESS_AT, Community
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from raters.arguments import strongest

if TYPE_CHECKING:
    from clients.demo.sim import Demo

TYPE_MAP: Final = {
    "dense-urban-neighbourhood": "neighbourhood-council",
    "suburban": "x-suburban-district",
    "small-town": "x-small-town",
    "rural-village": "village",
    "housing-cooperative": "housing-cooperative",
    "school-district": "school-board",
}
SIZES: Final = {
    "dense-urban-neighbourhood": (4_000, 20_000),
    "suburban": (3_000, 15_000),
    "small-town": (5_000, 30_000),
    "rural-village": (200, 3_000),
    "housing-cooperative": (40, 400),
    "school-district": (1_500, 9_000),
}
TAGS: Final = {
    "dense-urban-neighbourhood": ("urban", "renters"),
    "suburban": ("suburban", "commuters"),
    "small-town": ("town", "market"),
    "rural-village": ("rural",),
    "housing-cooperative": ("housing", "members"),
    "school-district": ("schools", "families"),
}
REGIONS: Final = ("GB-ENG", "GB-SCT", "GB-WLS")
EXTRA_PER_TYPE: Final = 2
ARGUE_TIMES: Final = 3
SUPPORT_AT: Final = 0.25
OPPOSE_AT: Final = 0.0
NESTED: Final = 0.3
RATE_REPLIES: Final = 3
AMENDMENTS: Final = 4
AMEND_AT: Final = (0.2, 0.35)
SETTLE_AFTER: Final = 0.1
RATE_REPORTS: Final = 3
CLAUSES: Final = (
    "Review the arrangement after six months in an open meeting.",
    "Publish the costs every quarter.",
    "Exempt households on low incomes from any fee.",
    "Start with a smaller pilot area.",
)


@dataclass
class GovState:
    """What the demo keeps of the governance loop."""

    replies: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (author did, target, stance)
    by_target: dict[str, list[str]] = field(default_factory=dict)  # proposal id -> every reply in its thread
    authors: dict[str, int] = field(default_factory=dict)  # proposal id -> member index
    amendments: list[tuple[str, str, int, str]] = field(default_factory=list)  # (id, proposal id, member, new text)
    accepted: int = 0
    forked: int = 0
    settled: set[int] = field(default_factory=set)
    adoptions: int = 0
    drops: int = 0
    nested: int = 0
    other_ratings: int = 0
    like_yours: dict[str, dict[str, Any]] = field(default_factory=dict)  # community slug -> /api/v1/communities doc


def extra_communities(corpus: dict[str, Any]) -> list[Community]:
    """``EXTRA_PER_TYPE`` generated communities per corpus community type."""
    out = []
    for t in corpus["community_types"]:
        for i in range(EXTRA_PER_TYPE):
            name = f"{t['name']} {chr(ord('A') + i)}"
            slug = f"{t['slug']}-{chr(ord('a') + i)}"[:40]
            out.append(Community(slug, name, t["description"], "", t["slug"]))
    return out


def community_profile(demo: Demo, c: Community) -> SignedEvent:
    rng = np.random.default_rng([demo.config.seed, 13, int.from_bytes(c.slug.encode()[:8], "big")])
    low, high = SIZES.get(c.type, (100, 10_000))
    return builders.community(
        demo.community_keys[c.slug],
        name=c.name,
        about=c.about,
        place=c.place or None,
        type=TYPE_MAP.get(c.type, "x-" + c.type[:38]),
        size=int(np.exp(rng.uniform(np.log(low), np.log(high)))),
        region=REGIONS[int(rng.integers(len(REGIONS)))],
        tags=TAGS.get(c.type, ()),
    )


def schedule(demo: Demo) -> None:
    """Argue moments for every agent and the amendment rounds."""
    d = demo.config.duration
    for m in demo.members:
        for _ in range(ARGUE_TIMES):
            demo.push(float(demo.rng.uniform(0.15, 0.9)) * d, "argue", m.owner.index)
    for k in range(AMENDMENTS):
        demo.push(float(AMEND_AT[0] + (AMEND_AT[1] - AMEND_AT[0]) * k / max(1, AMENDMENTS - 1)) * d, "amend", k)


# ----------------------------------------------------------------------------- arguments


def _view(demo: Demo, m: Any, pid: str) -> tuple[float, dict[str, float]] | None:
    if pid not in m.agent.board.index:
        return None
    try:
        p = m.agent.predict(pid)
    except Exception:  # a model not fitted yet has no opinion
        return None
    return float(p.overall), dict(p.criteria)


def _stance(score: float) -> str:
    return "support" if score >= SUPPORT_AT else "oppose" if score < OPPOSE_AT else "question"


def on_argue(demo: Demo, index: int, t: float) -> None:
    m = demo.members[index]
    gov: GovState = demo.gov
    pids = [pid for pid in m.agent.board.order if pid in demo.proposal_ids]  # on the board: stored
    if not pids:
        return
    pid = pids[int(demo.rng.integers(len(pids)))]
    view = _view(demo, m, pid)
    if view is None:
        return
    score, crit = view
    why = reason(score, crit, m.agent.profile.weights)
    stance = _stance(score)
    events: list[SignedEvent] = []
    earlier = [r for r in gov.by_target.get(pid, []) if gov.replies[r][0] != m.agent.did and r in demo.stored]
    if earlier and demo.rng.random() < NESTED:
        target = earlier[int(demo.rng.integers(len(earlier)))]
        their = gov.replies[target][2]
        stance = "support" if their == stance else "question" if "question" in (their, stance) else "oppose"
        text = f"{'Agreed' if stance == 'support' else 'I see it differently'}: for my owner this proposal scores {why}"
        gov.nested += 1
    else:
        target = pid
        p = demo.proposals[demo.slug_index[demo.proposal_ids[pid]]]
        lead = {"support": "This would work for my owner", "oppose": "This would not work for my owner", "question": "My owner is undecided"}[stance]
        text = f"{lead} ({p.title}): {why}"
    ev = builders.reply(m.agent.key, target=target, stance=stance, text=text[:8000], criteria=sorted(crit)[:20] or None)
    gov.replies[ev.id] = (m.agent.did, target, stance)
    gov.by_target.setdefault(pid, []).append(ev.id)
    events.append(ev)
    demo.counts.replies += 1
    # rate a few replies others wrote on proposals this agent has a view of
    mine = _stance(score)
    others = [r for r in gov.by_target.get(pid, []) if gov.replies[r][0] != m.agent.did and r in demo.stored]
    for r in others[-RATE_REPLIES:]:
        theirs = gov.replies[r][2]
        s = 0.7 if theirs == mine else -0.6 if {theirs, mine} == {"support", "oppose"} else 0.2
        s = float(np.clip(s + demo.rng.normal(0, 0.1), -1, 1))
        events.append(builders.rating(m.agent.key, target=r, score=round(s, 3), note=f"{'Agrees' if s > 0 else 'Disagrees'} with my owner's view: {why}"[:2000]))
        gov.other_ratings += 1
    demo.publish_later(m.conn, events)


# ----------------------------------------------------------------------------- amendments


def on_amend(demo: Demo, k: int, t: float) -> None:
    gov: GovState = demo.gov
    pids = [pid for pid in demo.proposal_ids if pid in gov.authors and pid in demo.stored]
    if not pids:
        return
    pid = sorted(pids)[int(demo.rng.integers(len(pids)))]
    author = gov.authors[pid]
    candidates = [m for m in demo.members if m.owner.index != author]
    m = candidates[int(demo.rng.integers(len(candidates)))]
    p = demo.proposals[demo.slug_index[demo.proposal_ids[pid]]]
    clause = CLAUSES[k % len(CLAUSES)]
    new_text = f"{p.text}\n\n**Amendment.** {clause}"
    ev = builders.amendment(m.agent.key, proposal=pid, text=new_text[:32000], reason=f"{clause} Agents for owners who care about these criteria asked for it.")
    gov.amendments.append((ev.id, pid, m.owner.index, new_text))
    demo.counts.amendments += 1
    demo.publish_later(m.conn, [ev])
    demo.push(t + SETTLE_AFTER * demo.config.duration, "settle", len(gov.amendments) - 1)


def on_settle(demo: Demo, n: int, t: float) -> None:
    """Even amendments are accepted by the proposal's author, odd ones forked by another agent."""
    gov: GovState = demo.gov
    aid, pid, amender, new_text = gov.amendments[n]
    if n in gov.settled:
        return
    if aid not in demo.stored:  # not confirmed yet: come back a little later
        demo.push(t + 0.02 * demo.config.duration, "settle", n)
        return
    gov.settled.add(n)
    p = demo.proposals[demo.slug_index[demo.proposal_ids[pid]]]
    if n % 2 == 0:
        author = demo.members[gov.authors[pid]]
        ev = builders.proposal(author.agent.key, title=f"{p.title} (revised)"[:200], summary=p.summary, text=new_text[:32000], tags=p.tags, revises=pid, accepts=[aid])
        gov.accepted += 1
        demo.publish_later(author.conn, [ev])
    else:
        others = [m for m in demo.members if m.owner.index not in (amender, gov.authors[pid])]
        forker = others[int(demo.rng.integers(len(others)))]
        ev = builders.proposal(forker.agent.key, title=f"{p.title} (fork)"[:200], summary=p.summary, text=new_text[:32000], tags=p.tags, forks=aid)
        gov.forked += 1
        demo.publish_later(forker.conn, [ev])


def settle_late(demo: Demo) -> int:
    """After the run: settle the amendments a lagging forum confirmed too late to settle in time."""
    gov: GovState = demo.gov
    late = [n for n in range(len(gov.amendments)) if n not in gov.settled and gov.amendments[n][0] in demo.stored]
    for n in late:
        on_settle(demo, n, demo.config.duration)
    return len(late)


# ----------------------------------------------------------------------------- trials


def pick_like_yours(demo: Demo, slug: str, untried: list[str]) -> str | None:
    """The untried proposal with the best like-yours success rate on the community's page."""
    doc = demo.gov.like_yours.get(slug) or {}
    rates = {p: v["like_yours"]["success_rate"] for p, v in (doc.get("like_yours") or {}).items()}
    known = [p for p in untried if p in rates]
    return max(known, key=lambda p: (rates[p], p)) if known else None


def rate_report(demo: Demo, outcome: SignedEvent, community_did: str, t: float) -> None:
    """Soon (once the forum holds the report), a few agents rate it, its community and a reply author."""
    demo.push(t + 0.02 * demo.config.duration, "rate_report", (outcome.id, bool(outcome.body.get("metrics")), community_did, 0))


def on_rate_report(demo: Demo, item: tuple[str, bool, str, int], t: float) -> None:
    outcome_id, has_metrics, community_did, tries = item
    if outcome_id not in demo.stored:
        if tries < 50 and t < demo.config.duration:
            demo.push(t + 0.02 * demo.config.duration, "rate_report", (outcome_id, has_metrics, community_did, tries + 1))
        return
    gov: GovState = demo.gov
    picks = demo.rng.choice(len(demo.members), size=min(RATE_REPORTS, len(demo.members)), replace=False)
    for i in picks:
        m = demo.members[int(i)]
        useful = 0.6 if has_metrics else 0.1
        events = [
            builders.rating(m.agent.key, target=outcome_id, score=round(float(np.clip(useful + demo.rng.normal(0, 0.1), -1, 1)), 3), note="Measured and reported with metrics." if useful > 0.5 else "No metrics."),
            builders.rating(m.agent.key, target=community_did, score=round(float(np.clip(0.5 + demo.rng.normal(0, 0.15), -1, 1)), 3), note="Tries proposals and reports back."),
        ]
        agreeing = [a for a, _, s in gov.replies.values() if s == "support" and a != m.agent.did]
        if agreeing:
            events.append(builders.rating(m.agent.key, target=agreeing[int(demo.rng.integers(len(agreeing)))], score=0.4, note="Argues in good faith."))
        gov.other_ratings += len(events)
        demo.publish_later(m.conn, events)


async def refresh_like_yours(demo: Demo) -> None:
    """Fetch every community's page document (neighbours and like-yours summaries)."""
    for c in demo.communities:
        did = demo.community_keys[c.slug].did
        try:
            demo.gov.like_yours[c.slug] = await asyncio.to_thread(demo.server.get_json, f"/api/v1/communities/{did}")
        except Exception:  # not yet a profile the forum knows, or the forum is busy: keep the last one
            continue


# ----------------------------------------------------------------------------- measured


def type_truth(effect: float) -> float:
    """P(success) of a trial in a community whose type has true ``effect`` (the world's noise)."""
    return float(norm.sf((SUCCESS_AT - effect) / EFFECT_NOISE))


async def _all_views(demo: Demo, kind: str) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = await asyncio.to_thread(demo.server.get_json, f"/api/v1/scores?kind={kind}&limit=1000&offset={offset}")
        views.update((v["target"], v) for v in page["scores"])
        if len(page["scores"]) < 1000:
            return views
        offset += 1000


async def measure(demo: Demo) -> dict[str, Any]:
    """The governance figures of the report (definitions in docs/demo.md)."""
    gov: GovState = demo.gov
    await refresh_like_yours(demo)
    err_like: list[float] = []
    err_global: list[float] = []
    for c in demo.communities:
        doc = gov.like_yours.get(c.slug) or {}
        for pid, row in (doc.get("like_yours") or {}).items():
            if pid not in demo.proposal_ids or not row.get("global"):
                continue
            truth = type_truth(demo.proposals[demo.slug_index[demo.proposal_ids[pid]]].true_effect[c.type])
            err_like.append(abs(row["like_yours"]["success_rate"] - truth))
            err_global.append(abs(row["global"]["success_rate"] - truth))
    views = await _all_views(demo, "reply")
    groups = await asyncio.to_thread(demo.server.get_json, "/api/v1/groups")
    k = int(groups.get("k") or 0)
    shown_for: set[str] = set()
    for pid in demo.proposal_ids:
        direct = [(rid, gov.replies[rid][2], i) for i, rid in enumerate(gov.by_target.get(pid, [])) if gov.replies[rid][1] == pid]
        for side in strongest(direct, views).values():
            for arg in side:
                means = ((views.get(arg.id) or {}).get("groups") or {}).get("means") or {}
                shown_for.update(g for g, mean in means.items() if mean is not None and mean > 0)
    return {
        "replies": demo.counts.replies,
        "nested_replies": gov.nested,
        "amendments": demo.counts.amendments,
        "amendments_accepted": gov.accepted,
        "amendments_forked": gov.forked,
        "adoptions": gov.adoptions,
        "drops": gov.drops,
        "other_ratings": gov.other_ratings,
        "communities": len(demo.communities),
        "like_yours_pairs": len(err_like),
        "like_yours_error": round(float(np.mean(err_like)), 4) if err_like else None,
        "global_error": round(float(np.mean(err_global)), 4) if err_global else None,
        "groups": k,
        "groups_with_arguments_shown": len(shown_for & {str(g) for g in range(k)}),
    }
