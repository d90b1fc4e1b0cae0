"""The demo's values and arbitration: plays :class:`clients.demo.cases.CaseStory` on
the running forum, and reports the cases and the moral graph.

At ``STORY_AT`` of the run the story opens (wiser statements about the corpus's
values cards, a dispute and a grievance) in its own thread; every ``STEP_S``
seconds it reads ``GET /api/v1/cases`` and publishes what the story answers. Jurors vote by
their owners' stated values (:func:`duty_of`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from clients.agent.values import JuryDuty, suggestions
from clients.demo.cases import CaseStory
from clients.demo.world import SimOwner
from clients.sdk.builders import SignedEvent

if TYPE_CHECKING:
    from clients.demo.sim import Demo

STORY_AT: Final = 0.1
STEP_S: Final = 0.3
"""The story opens at 10 % of the run, once the agents are established (docs/arbitration.md)."""


def duty_of(owner: SimOwner) -> JuryDuty:
    """An owner who states fairness and affordability upholds livelihood claims more
    readily; one who states individual liberty, less."""
    s = owner.stated
    lean = 0.45 + s.get("fairness-equity", 0.0) + s.get("affordability", 0.0) - s.get("individual-liberty", 0.0)
    return JuryDuty({"livelihood": max(0.0, min(1.0, lean)), "reputation": 0.3})


def on_open(demo: Demo, _: Any, t: float) -> None:
    if not demo.proposal_authors or not demo.card_ids:
        demo.push(t + demo.config.tick, "cases", None)
        return
    keys = {m.agent.key.did: m.agent.key for m in demo.members}
    owners = {m.agent.key.did: m.owner for m in demo.members}
    rng = np.random.default_rng([demo.config.seed, 14])  # its own: the story runs in its own thread
    story = CaseStory(keys, demo.card_ids, rng, lambda did: duty_of(owners[did]))
    target = next(iter(demo.proposal_authors))
    demo.story = story
    opening = story.opening(target, demo.proposal_authors[target])
    runner = threading.Thread(target=_run, args=(demo.server.url, story, opening, demo.story_stop),
                              name="demo-cases", daemon=True)  # fmt: skip
    runner.start()


def _post(url: str, events: list[SignedEvent]) -> None:
    body = "\n".join(json.dumps(e.envelope) for e in events).encode()
    req = urllib.request.Request(url + "/api/v1/events:batch", data=body, method="POST",
                                 headers={"content-type": "application/x-ndjson"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def _get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=30) as resp:
        return json.loads(resp.read())


def _run(url: str, story: CaseStory, opening: list[SignedEvent], stop: threading.Event) -> None:
    """The story in its own thread, over plain HTTP: the simulation's event loop is busy with
    hundreds of agents, and the cases' windows pass in log time whether it is or not."""
    try:
        _post(url, opening)
        while not story.done and not stop.wait(STEP_S):
            events = story.step(_get(url, "/api/v1/cases"))
            if events:
                _post(url, events)
    except (OSError, ValueError):  # the forum went away at the end of the run
        return


async def summary(demo: Demo) -> dict[str, Any]:
    """The report's ``arbitration`` section: each story case and the moral graph's ranking."""
    cases = await asyncio.to_thread(demo.server.get_json, "/api/v1/cases")
    graph = await asyncio.to_thread(demo.server.get_json, "/api/v1/moral-graph")
    story = demo.story
    by_id = {c["case"]: c for c in cases.get("cases", ())}

    def brief(case_id: str) -> dict[str, Any] | None:
        c = by_id.get(case_id)
        if c is None:
            return None
        return {"case": case_id, "status": c["status"], "layer": c["layer"], "reason": c["layer_reason"],
                "rounds": [{"jurors": len(r["seats"]), "votes": len(r["votes"]), "not_counted": len(r["not_counted"]),
                            "verdict": (r["tally"] or {}).get("verdict")} for r in c["rounds"]],
                "verdict": (c["verdict"] or {}).get("verdict"), "appealed": c["appeal"] is not None}  # fmt: skip

    star = next((c for c in graph.get("contexts", ()) if c["context"] == "*"), None)
    ranking = [{"card": graph["cards"][r["card"]]["title"], "rank": round(r["rank"], 4)} for r in (star or {}).get("ranking", [])]
    held = [r["card"] for r in (star or {}).get("ranking", [])[-1:]]
    return {
        "dispute": brief(story.dispute) if story else None,
        "grievance": brief(story.grievance) if story else None,
        "cases": len(by_id),
        "moral_graph": {"statements": (star or {}).get("statements", 0), "ranking": ranking,
                        "suggestions": [s.text for s in suggestions(graph, held)][:3]},
    }
