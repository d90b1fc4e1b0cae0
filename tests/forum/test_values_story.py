"""Values and arbitration end to end on a real forum app (SQLite and PostgreSQL):
the demo's story (clients/demo/cases.py) plays out through the HTTP API; the
dispute is dismissed as a negotiation question, the grievance goes to a jury,
a verdict and an appeal; ``forum verify``'s audit reproduces the moral graph and
every case, draw and verdict from the export, and reports a tampered one."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import feedparser
import numpy as np
import orjson
import pytest
from starlette.testclient import TestClient

from clients.agent.values import JuryDuty, suggestions
from clients.audit import audit
from clients.demo.cases import CaseStory
from clients.sdk import arbitration as arb
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import derive_key
from feeds.site import create_app  # the full app: forum with its public web
from tests.forum.conftest import make_settings

SCALE = 0.1  # windows: established after 20 seqs, assess 200, commit 100, reveal 100, appeal 200


def publish(client: TestClient, events: list[SignedEvent]) -> None:
    if not events:
        return
    body = "\n".join(orjson.dumps(e.envelope).decode() for e in events)
    res = client.post("/api/v1/events:batch", content=body, headers={"content-type": "application/x-ndjson"})
    assert all(r["accepted"] for r in res.json()["results"]), res.json()


def settled(client: TestClient) -> dict[str, Any]:
    head = client.get("/healthz").json()["head_seq"]
    for _ in range(500):
        doc = client.get("/api/v1/cases").json()
        if doc.get("as_of_seq") == head:
            return doc  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError("the cases document did not catch up with the log")


def scores_when(client: TestClient, until: Any = lambda snap: True) -> dict[str, Any]:
    """The score snapshot once both documents are published and ``until`` holds."""
    for _ in range(1500):
        snap = client.get("/api/v1/scores:snapshot").json()
        if snap["cheap"] and snap["fitted"] and until(snap):
            return snap  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError("the scores did not catch up with the log")


@pytest.fixture
def story_forum(tmp_path: Path, database_url: str) -> Any:
    settings = make_settings(tmp_path, database_url, arbitration_window_scale=SCALE, scores_interval_s=0.1, scores_min_new_ratings=1)
    with TestClient(create_app(settings)) as c:
        yield c


def test_the_story_plays_out_and_verifies(story_forum: TestClient) -> None:
    client = story_forum
    keys = {k.did: k for k in (derive_key("values-story", f"agent/{i}") for i in range(30))}
    dids = sorted(keys)
    curator = derive_key("values-story", "curator")
    cards = [builders.criterion(curator, title=t, description=f"Attending to {t.lower()}.", policies=[f"moments of {t.lower()}"])
             for t in ("Honesty", "Care", "Fairness")]  # fmt: skip
    first = [*cards] + [builders.agent(keys[d], name=f"Agent {i}", about="", owner=f"Owner {i}") for i, d in enumerate(dids)]
    props = [builders.proposal(keys[dids[i]], title=f"Idea {i}", text="...") for i in range(8)]
    ratings = [builders.rating(keys[d], target=p.id, score=(0.9 if (i % 2) == (j < 4) else -0.9))
               for i, d in enumerate(dids) for j, p in enumerate(props) if p.event.author != d]  # fmt: skip
    publish(client, first + props + ratings)
    given = {p.id: {r.event.author: r.event.body["score"] for r in ratings if r.event.body["target"] == p.id} for p in props}
    before = {p: client.get(f"/api/v1/scores/{p}").json() for p in given}
    assert all(before[p]["count"] == len(given[p]) == len(dids) - 1 for p in given)

    rng = np.random.default_rng(3)
    duties = {d: JuryDuty({"livelihood": 0.9}) for d in dids}  # every owner upholds livelihood claims
    story = CaseStory(keys, [c.id for c in cards], rng, duties.__getitem__)
    publish(client, story.opening(props[0].id, props[0].event.author))
    n = 0
    for _ in range(120):
        doc = settled(client)
        publish(client, story.step(doc))
        if story.done:
            break
        # everyday activity of established agents: the log moves on (log time)
        filler = [builders.agent(keys[d], name="Agent", about=f"update {n + k}", owner=f"Owner {dids.index(d)}")
                  for k, d in enumerate(rng.choice(dids, 12))]  # fmt: skip
        n += len(filler)
        publish(client, filler)
    assert story.done, story.status
    doc = settled(client)
    by_id = {c["case"]: c for c in doc["cases"]}
    dispute, grievance = by_id[story.dispute], by_id[story.grievance]
    assert (dispute["status"], dispute["layer"], dispute["rounds"]) == ("dismissed", "negotiation", [])
    assert grievance["layer"] == "rights" and len(grievance["rounds"]) == 2
    trial, appeal = grievance["rounds"]
    assert len(trial["seats"]) == 5 and len(appeal["seats"]) == 9
    assert not {s["juror"] for s in trial["seats"]} & {s["juror"] for s in appeal["seats"]}
    assert [x["status"] for x in trial["not_counted"]] == ["mismatch"]
    assert story.liar not in {v["juror"] for v in trial["votes"]}
    assert grievance["appeal"]["author"] == story.appellant in grievance["parties"]
    assert grievance["verdict"]["round"] == 1 and grievance["verdict"]["verdict"] == "upheld"
    assert story.appellant == story.flagged  # the losing party appealed

    # the remedy: a label, out of the default listing, never out of the log
    assert doc["remedies"][story.flagged]["case"] == story.grievance
    publish(client, [builders.rating(keys[dids[k]], target=story.flagged, score=0.5) for k in range(3)
                     if dids[k] != story.flagged])  # fmt: skip
    settled(client)
    for _ in range(500):
        view = client.get(f"/api/v1/scores/{story.flagged}")
        if view.status_code == 200:
            break
        time.sleep(0.01)
    assert view.json()["remedy"]["case"] == story.grievance
    listed = {v["target"] for v in client.get("/api/v1/scores", params={"kind": "agent"}).json()["scores"]}
    everything = client.get("/api/v1/scores", params={"kind": "agent", "include_remedied": "true"}).json()["scores"]
    assert story.flagged not in listed and story.flagged in {v["target"] for v in everything}
    assert client.get("/api/v1/scores", params={"include_remedied": "yes"}).status_code == 400

    # ... and out of the score pools: its ratings counted before the verdict, not after
    snap = scores_when(client, lambda s: s["cheap"]["remedies"]["agents"] == s["fitted"]["remedies"]["agents"] == [story.flagged])
    rated = [p for p in given if story.flagged in given[p]]
    assert rated
    for p in rated:
        others = [v for d, v in given[p].items() if d != story.flagged]
        after = client.get(f"/api/v1/scores/{p}").json()
        assert after["count"] == before[p]["count"] - 1 == len(others)
        assert after["mean"] == pytest.approx(sum(others) / len(others))
        assert before[p]["mean"] == pytest.approx(sum(given[p].values()) / len(given[p]))
    assert story.flagged not in snap["fitted"]["raters"] and story.flagged not in snap["cheap"]["raters"]
    verdict_seq = grievance["rounds"][0]["decided_seq"]
    assert verdict_seq <= snap["cheap"]["remedies"]["since_seq"] == snap["fitted"]["remedies"]["since_seq"] <= snap["cheap"]["as_of_seq"]
    doc = settled(client)
    assert client.get(f"/api/v1/cases/{story.grievance}").json()["case"] == grievance
    assert client.get("/api/v1/cases/nothex").json()["reason"] == "invalid"
    assert client.get(f"/api/v1/cases/{'0' * 64}").status_code == 404

    graph = client.get("/api/v1/moral-graph").json()
    assert [c["context"] for c in graph["contexts"]] == ["*", "neighbours", "towns"]
    assert graph["contexts"][0]["ranking"][0]["card"] == cards[2].id  # people move to later cards
    assert client.get("/api/v1/moral-graph", params={"context": "towns"}).json()["contexts"][0]["context"] == "towns"
    held = suggestions(graph, [cards[0].id])
    assert all("Only you decide" in s.text for s in held)

    # the pages: the feed of cases, each case, the moral graph; agents' words are escaped
    nasty = arb.flag(keys[dids[3]], target=keys[dids[4]].did, right="other", description="<b>the right</b>",
                     harm="<script>alert(1)</script>", links=["https://example.org/x?a=1&b=2&c='q'"])  # fmt: skip
    publish(client, [nasty])
    doc = settled(client)
    listing = client.get("/cases").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing and "<script>alert" not in listing
    assert listing.index(nasty.id) < listing.index(story.grievance) < listing.index(story.dispute)  # newest first
    assert story.dispute not in client.get("/cases?layer=rights").text
    page = client.get(f"/cases/{story.grievance}").text
    assert "The appeal jury" in page and "does not match the sealed vote" in page and "Appealed by" in page
    assert "Verdict on appeal" in page and "not a rights question" in client.get(f"/cases/{story.dispute}").text
    assert "&lt;b&gt;the right&lt;/b&gt;" in client.get(f"/cases/{nasty.id}").text
    assert client.get(f"/cases/{'0' * 64}").status_code == 404
    feed = client.get("/cases.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and len(parsed.entries) == 3
    assert parsed.entries[0].link.endswith(f"/cases/{nasty.id}") and parsed.entries[2].link.endswith(f"/cases/{story.dispute}")
    assert "<script>alert(1)</script>" in parsed.entries[0].content[0].value  # text content, escaped in the XML
    assert "Livelihood: closed, verdict upheld" == parsed.entries[1].title
    values_page = client.get("/values?context=towns").text
    assert "Honesty" in values_page and "came to prefer" in values_page
    assert client.get("/values?context=no-such").status_code == 404
    assert client.get("/values?context=%3Cx%3E").status_code == 400

    # forum verify: recompute both documents from the signed export
    lines = [orjson.loads(x) for x in client.get("/api/v1/export").text.splitlines() if x.strip()]
    values = {"moral_graph": graph, "cases": doc}
    report = audit(lines, None, values=values)
    assert report.verified == len(lines) and {"moral-graph", "cases"} <= set(report.checked)
    assert [f for f in report.findings if f.section != "export"] == [], report.findings[:5]
    # the scores, remedy applied, verify; a forum that kept the remedied agent in a pool does not
    snap = scores_when(client)
    report = audit(lines, snap, values=values)
    assert {"cheap", "fitted", "cases"} <= set(report.checked)
    assert [f for f in report.findings if f.section != "export"] == [], report.findings[:5]
    kept = copy.deepcopy(snap)
    kept["cheap"]["remedies"]["agents"] = []
    bad = audit(lines, kept, values=values)
    assert any(f.section == "cheap" and f.path.startswith("remedies") for f in bad.findings)
    j = snap["cheap"]["targets"].index(rated[0])
    kept = copy.deepcopy(snap)
    kept["cheap"]["aggregates"]["count"][j] += 1
    bad = audit(lines, kept, values=values)
    assert any(f.section == "cheap" and f.path == f"aggregates.count[{j}]" for f in bad.findings)

    forged = copy.deepcopy(doc)
    forged["cases"][1]["rounds"][0]["votes"][0]["vote"] = "dismiss" if trial["votes"][0]["vote"] == "uphold" else "uphold"
    bad = audit(lines, None, values={"cases": forged, "moral_graph": graph})
    assert any(f.section == "cases" and "votes[0].vote" in f.path for f in bad.findings)
    moved = copy.deepcopy(graph)
    moved["contexts"][0]["edges"][0]["wiser"] += 1
    bad = audit(lines, None, values={"cases": doc, "moral_graph": moved})
    assert any(f.section == "moral-graph" and f.path.endswith("edges[0].wiser") for f in bad.findings)
