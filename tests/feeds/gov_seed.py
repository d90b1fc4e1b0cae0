"""A small governance world for the page, feed and browser tests: a proposal with a nested
thread, an accepted and a forked amendment, communities of two types with rule sets and
outcomes, and hostile text in every new field."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.feeds.conftest import Publish
from tests.feeds.helpers import Agent, event_id, proposal_body

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@dataclass
class GovWorld:
    proposal: str
    reply: str
    nested: str
    accepted: str
    forked: str
    revision: str
    fork: str
    village: str
    city: str
    adoption: str
    outcome: str


def _outcome(proposal: str, verdict: str, adoption: str | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "proposal": proposal, "status": "completed", "verdict": verdict, "period": {"start": "2026-01-01", "end": "2026-03-01"},
        "metrics": [], "summary": "Done.", "evidence": [],
    }
    if adoption:
        body.update(adoption=adoption, milestone="completed")
    body.update(over)
    return body


def seed_governance(get_json: Callable[[str], Any], publish: Publish) -> GovWorld:
    author, critic, ally, forker = Agent("gov-author"), Agent("gov-critic"), Agent("gov-ally"), Agent("gov-forker")
    publish(author.envelope("agent", {"name": "Author agent", "about": "x"}))
    publish(critic.envelope("agent", {"name": f"Critic {HOSTILE}", "about": "x"}))
    p = publish(author.envelope("proposal", proposal_body("Rotating chair", text="The chair rotates **monthly**.")))
    reply = publish(critic.envelope("reply", {"target": p, "stance": "oppose", "text": f"Too often. {HOSTILE} [link](javascript:alert(1))", "quote": f"monthly {HOSTILE}"}))
    nested = publish(ally.envelope("reply", {"target": reply, "stance": "question", "text": "What would you prefer?"}))
    publish(ally.envelope("reply", {"target": p, "stance": "support", "text": "Shares the load."}))
    accepted = publish(critic.envelope("amendment", {"proposal": p, "text": "The chair rotates every quarter.", "reason": f"Less churn {HOSTILE}"}))
    forked = publish(ally.envelope("amendment", {"proposal": p, "diff": f"-monthly\n+by lot {HOSTILE}", "reason": "Fairer."}))
    revision = publish(author.envelope("proposal", proposal_body("Rotating chair v2", text="Quarterly.", revises=p, accepts=[accepted])))
    fork = publish(forker.envelope("proposal", proposal_body("Chair by lot", text="By lot.", forks=forked)))
    villages = [Agent(f"gov-village-{i}") for i in range(4)]
    cities = [Agent(f"gov-city-{i}") for i in range(3)]
    adoption = ""
    out = ""
    for i, v in enumerate(villages):
        publish(v.envelope("community", {"name": f"Village {i} {HOSTILE}" if i == 0 else f"Village {i}", "about": "", "type": "village", "size": 300 + i, "region": "FR", "tags": ["rural"]}))
        a = publish(v.envelope("adoption", {"proposal": p, "action": "adopt", "start": "2026-01-01", "params": {"term": f"quarter {HOSTILE}"}, "note": HOSTILE}))
        o = publish(v.envelope("outcome", _outcome(p, "success", a)))
        if i == 0:
            adoption, out = a, o
    for i, ct in enumerate(cities):
        publish(ct.envelope("community", {"name": f"City {i}", "about": "", "type": "city", "size": 90_000 + i, "region": "DE"}))
        a = publish(ct.envelope("adoption", {"proposal": p, "action": "adopt", "start": "2026-01-01"}))
        publish(ct.envelope("outcome", _outcome(p, "failure", a)))
        publish(ct.envelope("adoption", {"proposal": p, "action": "drop", "start": "2026-04-01"}))
    # Ratings of the replies and amendments, so arguments have scores.
    raters = [Agent(f"gov-rater-{i}") for i in range(4)]
    for r in raters:
        publish(r.envelope("rating", {"target": reply, "score": 0.6, "criteria": {}}))
        publish(r.envelope("rating", {"target": accepted, "score": 0.5, "criteria": {}}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the communities section follows the cheap document
        doc = get_json(f"/api/v1/communities/{villages[1].did}")
        if doc.get("like_yours", {}).get(p):
            break
        time.sleep(0.1)
    return GovWorld(p, reply, nested, accepted, forked, revision, fork, villages[0].did, cities[0].did, adoption, out)


__all__ = ["HOSTILE", "GovWorld", "event_id", "seed_governance"]
