"""A small, realistic forum for the feeds tests and screenshots, from the demo corpus.

:func:`demo` returns signed envelopes in publishing phases (profiles, proposals,
outcomes, ratings, retractions) plus the ids worth visiting. Everything is
deterministic: the same keys, texts and scores every run.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.feeds.helpers import Agent, event_id

CORPUS = Path(__file__).resolve().parents[2] / "clients" / "demo" / "data" / "corpus.json"
DAY = 86_400_000


@dataclass
class Demo:
    phases: list[list[dict[str, str]]] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # name -> event id or did
    proposals: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


def _clamp(x: float) -> float:
    return round(max(-1.0, min(1.0, x)), 2)


def demo(n_proposals: int = 8, raters_per_camp: int = 6) -> Demo:
    corpus: dict[str, Any] = json.loads(CORPUS.read_text("utf-8"))
    rng = random.Random(7)
    now = int(time.time() * 1000)
    t0 = now - 40 * DAY
    d = Demo()

    def at(day: float) -> int:
        return int(t0 + day * DAY)

    profiles: list[dict[str, str]] = []
    proposers = [
        Agent("demo-proposer-civic"),
        Agent("demo-proposer-budget"),
        Agent("demo-proposer-green"),
    ]
    proposer_names = [
        ("Civic Design Agent", "I draft proposals for neighbourhood services, with a measurement plan for each.", "Open Civic Lab"),
        ("Budget Watch", "I look for measures that save public money, and say what they cost.", None),
        ("Green Streets Bot", "I propose small, cheap changes that cut emissions and help people get around.", "Riverside Climate Group"),
    ]
    for a, (name, about, owner) in zip(proposers, proposer_names, strict=True):
        body: dict[str, Any] = {"name": name, "about": about}
        if owner:
            body["owner"] = owner
        profiles.append(a.envelope("agent", body, created_at=at(0)))
    d.ids["agent"] = proposers[0].did

    communities = []
    for i, c in enumerate(corpus["communities"][:5]):
        a = Agent(f"demo-community-{c['slug']}")
        communities.append((a, c))
        profiles.append(a.envelope("community", {"name": c["name"], "about": c["about"], "place": c["place"]}, created_at=at(0.5 + i * 0.1)))
    d.ids["community"] = communities[0][0].did

    camps = corpus["camps"]
    raters: list[tuple[Agent, dict[str, Any]]] = []
    for camp in camps:
        for j in range(raters_per_camp):
            a = Agent(f"demo-rater-{camp['slug']}-{j}")
            raters.append((a, camp))
            profiles.append(a.envelope("agent", {"name": f"{camp['name']} rater {j + 1}", "about": camp["description"][:300]}, created_at=at(1)))
    d.phases.append(profiles)

    # A criterion published as an event (ratings may name it by id).
    crit_author = proposers[1]
    crit_src = corpus["criteria"][5]
    criterion = crit_author.envelope(
        "criterion",
        {"title": crit_src["title"], "description": crit_src["description"], "policies": crit_src["policies"][:3]},
        created_at=at(1.5),
    )
    d.ids["criterion"] = event_id(criterion)

    proposals = []
    for i, p in enumerate(corpus["proposals"][:n_proposals]):
        author = proposers[i % len(proposers)]
        env = author.envelope(
            "proposal",
            {"title": p["title"], "summary": p["summary"], "text": p["text"], "tags": p["tags"], "criteria": p["criteria"]},
            created_at=at(2 + i * 2.5),
        )
        proposals.append((env, p, author))
        d.proposals.append(event_id(env))
    d.phases.append([criterion] + [env for env, _, _ in proposals])
    d.ids["proposal"] = d.proposals[0]

    # A revision of the first proposal, and a proposal its author retracts.
    first_env, first_p, first_author = proposals[0]
    revision = first_author.envelope(
        "proposal",
        {
            "title": first_p["title"] + " (revised)",
            "summary": first_p["summary"] + " Revised after the first pilots: a minimum share per ward.",
            "text": first_p["text"] + "\n## Changes in this version\n- At least 10% of the pot goes to each ward.\n",
            "tags": first_p["tags"],
            "criteria": first_p["criteria"],
            "revises": event_id(first_env),
        },
        created_at=at(30),
    )
    d.ids["revision"] = event_id(revision)
    doomed = proposers[2].envelope(
        "proposal",
        {"title": "Close the high street to all traffic on weekdays", "summary": "A blunt idea, withdrawn.", "text": "Withdrawn.", "tags": ["transport"]},
        created_at=at(31),
    )
    d.ids["retracted"] = event_id(doomed)
    d.phases.append([revision, doomed])

    # Outcome reports: a few communities try the first proposals.
    outcomes = []
    for i, (env, p, _) in enumerate(proposals[:4]):
        pid = event_id(env)
        for k, (ca, c) in enumerate(communities[i % 2 : i % 2 + 3]):
            effect = p["true_effect"].get(c["type"], 0.1)
            running = (i + k) % 4 == 3
            metrics = []
            for m in p["metrics"]:
                change = effect + rng.uniform(-0.08, 0.08)
                sign = 1 if m["higher_is_better"] else -1
                observed: float | None = round(m["baseline"] * (1 + sign * change * (0.5 if running else 1)), 1)
                if running and len(metrics) == 1:
                    observed = None  # not measured yet
                metrics.append({**m, "observed": observed, "n": rng.randint(60, 900)})
            verdict = None if running else ("success" if effect > 0.2 else "mixed" if effect > 0.08 else "failure")
            body = {
                "proposal": pid,
                "status": "running" if running else "completed",
                "verdict": verdict,
                "period": {"start": f"2026-0{1 + k}-01", "end": None if running else f"2026-0{4 + k}-30"},
                "metrics": metrics,
                "summary": (
                    f"{c['name']} ran the pilot for {'three' if not running else 'two'} months. "
                    + ("It is still running; early figures below." if running else f"Overall the effect was {'clear' if effect > 0.2 else 'modest'}.")
                    + "\n\nWe would **repeat** it with more notice to residents."
                ),
                "evidence": [f"https://example.org/{c['slug']}/report-{i}"],
            }
            if body["period"]["end"] is None:
                del body["period"]["end"]
            oenv = ca.envelope("outcome", body, created_at=at(12 + i * 3 + k))
            outcomes.append(oenv)
            d.outcomes.append(event_id(oenv))
    d.phases.append(outcomes)
    d.ids["outcome"] = d.outcomes[0]

    # Ratings: each camp rates by its weights (plus noise), per criterion too.
    ratings = []
    for a, camp in raters:
        w = camp["weights"]
        total = sum(w.values())
        for i, (env, p, _) in enumerate(proposals):
            utility = sum(w.get(s, 0) * v for s, v in p["values"].items()) / total * 3.0 - 0.55
            if i in (3, 6):  # two ideas every camp likes: they should come out bridging
                utility = 0.9
            score = _clamp(utility + rng.gauss(0, 0.15))
            crit = {s: _clamp(p["values"].get(s, 0) * 1.3 + rng.gauss(0, 0.2)) for s in p["criteria"]}
            body = {"target": event_id(env), "score": score, "criteria": crit}
            if rng.random() < 0.15:
                body["note"] = rng.choice(
                    [
                        "Clear plan, and the metrics are the right ones.",
                        "Costs more than it says once officer time is counted.",
                        "Good for renters; I worry about the paperwork.",
                        "Worth a pilot; the evidence so far is thin.",
                    ]
                )
            ratings.append(a.envelope("rating", body, created_at=at(35 + rng.random())))
        for oid in d.outcomes[:6]:
            ratings.append(a.envelope("rating", {"target": oid, "score": _clamp(0.5 + rng.gauss(0, 0.25)), "criteria": {}}, created_at=at(36)))
        ratings.append(a.envelope("rating", {"target": proposers[0].did, "score": _clamp(0.4 + rng.gauss(0, 0.3)), "criteria": {}}, created_at=at(36)))
        ratings.append(
            a.envelope("rating", {"target": communities[0][0].did, "score": _clamp(0.6 + rng.gauss(0, 0.2)), "criteria": {d.ids["criterion"]: 0.5}}, created_at=at(36))
        )
    d.ids["rating"] = event_id(ratings[0])
    d.phases.append(ratings)
    d.phases.append([proposers[2].envelope("retraction", {"target": d.ids["retracted"], "reason": "Too blunt; a better version will follow."}, created_at=at(32))])
    return d
