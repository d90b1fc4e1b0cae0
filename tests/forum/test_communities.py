"""Communities like yours in the forum: rule sets, neighbours and like-yours summaries
served over HTTP, recomputed from the export by the audit, and a lie detected."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.testclient import TestClient

from clients.audit import audit
from forum.app import create_app
from tests.forum.conftest import make_settings
from tests.forum.helpers import Signer, adoption, event_id, outcome, proposal
from tests.forum.test_scores import _wait_for


def _profile(s: Signer, name: str, kind: str, size: int) -> dict[str, str]:
    return s.envelope("community", {"name": name, "about": "", "type": kind, "size": size, "region": "DE"})


def test_rule_set_neighbours_like_yours_and_verify(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, scores_interval_s=0.2)
    author = Signer()
    p1, p2 = proposal(author, "Rotating chair"), proposal(author, "Open budget")
    villages = [Signer() for _ in range(4)]
    cities = [Signer() for _ in range(4)]
    envs = [p1, p2]
    for i, v in enumerate(villages):
        envs += [_profile(v, f"Village {i}", "village", 300 + i), adoption(v, event_id(p1))]
        envs.append(outcome(v, event_id(p1), verdict="success"))
    for i, c in enumerate(cities):
        envs += [_profile(c, f"City {i}", "city", 80_000 + i), adoption(c, event_id(p1))]
        envs.append(outcome(c, event_id(p1), verdict="failure"))
    # Village 0 also adopts p2, then drops p1: its rule set is p2 only.
    envs += [adoption(villages[0], event_id(p2), start="2026-04-01"), adoption(villages[0], event_id(p1), action="drop", start="2026-05-01")]
    with TestClient(create_app(settings)) as client:
        res = client.post("/api/v1/events:batch", content=b"\n".join(orjson.dumps(e) for e in envs)).json()["results"]
        assert all(r["accepted"] for r in res), res
        head = client.get("/healthz").json()["head_seq"]
        snap = _wait_for(client, head, fitted=True)  # the global outcome summaries are fitted
        doc = client.get(f"/api/v1/communities/{villages[1].did}").json()
        assert [r["proposal"] for r in doc["rule_set"]] == [event_id(p1)]
        assert {n["community"] for n in doc["neighbours"]} == {v.did for v in villages[1:] if v is not villages[1]} | {villages[0].did}
        ly = doc["like_yours"][event_id(p1)]
        # 4 successes, 4 failures from communities too young to be credible: nothing
        # pooled, the prior 0.5 (with credibility 1 each it would be (4+1)/(8+2) = 0.5 too)
        assert ly["global"]["success_rate"] == 0.5
        assert ly["like_yours"]["success_rate"] > 0.7  # the other villages all succeeded
        assert villages[1].did not in ly["like_yours"]["communities"]  # never one's own report
        city = client.get(f"/api/v1/communities/{cities[0].did}").json()
        assert city["like_yours"][event_id(p1)]["like_yours"]["success_rate"] < 0.3
        v0 = client.get(f"/api/v1/communities/{villages[0].did}").json()
        assert [r["proposal"] for r in v0["rule_set"]] == [event_id(p2)]
        assert client.get(f"/api/v1/communities/{author.did}").status_code == 404
        export = client.get("/api/v1/export").content.splitlines()

    report = audit(export, snap)
    assert report.ok, report.findings
    lying = orjson.loads(orjson.dumps(snap))
    row = lying["cheap"]["communities"]["like_yours"][event_id(p1)][cities[0].did]
    row["success_rate"] = 0.9  # the forum claims cities like this one succeed
    report = audit(export, lying)
    assert not report.ok and any(f.path.startswith("communities") for f in report.findings), report.findings
