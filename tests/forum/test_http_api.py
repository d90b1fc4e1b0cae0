"""The HTTP API in-process, on both databases."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.testclient import TestClient

from tests.forum.helpers import Signer, agent, event_id, proposal, rating

ERROR_KEYS = {"ok", "status", "reason", "message"}


def test_error_shape_is_pinned(client: TestClient) -> None:
    """One JSON error shape for every error: routing, validation, unknown ids."""
    responses = [
        client.get("/api/v1/nothing-here"),
        client.post("/api/v1/events", content=b"not json"),
        client.post("/api/v1/events", json={"payload": "{}", "sig": "AA"}),
        client.get("/api/v1/events/" + "0" * 64),
        client.get("/api/v1/events?kinds=bogus"),
        client.get("/api/v1/events?colour=red"),
        client.get("/api/v1/export?after_seq=-1"),
        client.delete("/api/v1/events"),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [404, 400, 400, 404, 400, 400, 400, 405]
    for r in responses:
        body = r.json()
        assert set(body) == ERROR_KEYS, body
        assert body["ok"] is False and body["status"] == r.status_code
        assert body["message"].startswith(body["reason"] + ": ")
        assert r.headers["content-type"] == "application/json"


def test_publish_get_and_query(client: TestClient) -> None:
    alice, bob = Signer(), Signer()
    envs = [agent(alice), proposal(alice, "A", ["gardens"]), proposal(bob, "B", ["streets"])]
    for env in envs:
        r = client.post("/api/v1/events", json=env)
        assert r.status_code == 201, r.json()
        assert r.json()["id"] == event_id(env) and r.json()["accepted"] is True
    again = client.post("/api/v1/events", json=envs[0])
    assert again.status_code == 200 and again.json()["message"].startswith("duplicate: ")

    one = client.get(f"/api/v1/events/{event_id(envs[1])}").json()
    assert one["payload"] == envs[1]["payload"] and one["sig"] == envs[1]["sig"] and one["seq"] == 2

    assert [e["seq"] for e in client.get("/api/v1/events").json()["events"]] == [1, 2, 3]
    assert [e["id"] for e in client.get("/api/v1/events?tags=gardens").json()["events"]] == [event_id(envs[1])]
    by_author = client.get(f"/api/v1/events?authors={bob.did}").json()["events"]
    assert [e["id"] for e in by_author] == [event_id(envs[2])]
    kinds = client.get("/api/v1/events?kinds=agent,proposal&limit=2").json()
    assert [e["seq"] for e in kinds["events"]] == [2, 3]
    older = client.get(kinds["next"]).json()
    assert [e["seq"] for e in older["events"]] == [1]
    after = client.get("/api/v1/events?after_seq=1&limit=1").json()
    assert [e["seq"] for e in after["events"]] == [2]
    assert [e["seq"] for e in client.get(after["next"]).json()["events"]] == [3]


def test_refs_filter_and_retraction(client: TestClient) -> None:
    alice, bob = Signer(), Signer()
    p = proposal(alice)
    pid = event_id(p)
    client.post("/api/v1/events", json=p)
    first = rating(bob, pid, 0.2, note="first")
    second = rating(bob, pid, 0.9, note="second")
    for env in (first, second):
        assert client.post("/api/v1/events", json=env).status_code == 201
    refs = client.get(f"/api/v1/events?refs={pid}").json()["events"]
    assert [e["id"] for e in refs] == [event_id(first), event_id(second)]
    retract = bob.envelope("retraction", {"target": event_id(second)})
    assert client.post("/api/v1/events", json=retract).status_code == 201
    stored = client.get(f"/api/v1/events/{event_id(second)}").json()
    assert stored["retracted"] is True
    # A retraction of a retraction is refused.
    again = bob.envelope("retraction", {"target": event_id(retract)})
    assert client.post("/api/v1/events", json=again).json()["reason"] == "invalid"


def test_batch_ndjson(client: TestClient) -> None:
    s = Signer()
    good = [proposal(s, f"Idea {i}") for i in range(5)]
    lines = [orjson.dumps(e) for e in good] + [b"{broken", orjson.dumps(good[0])]
    r = client.post("/api/v1/events:batch", content=b"\n".join(lines) + b"\n")
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["accepted"] for x in results] == [True] * 5 + [False, True]
    assert results[5]["message"].startswith("invalid: ")
    assert results[6]["message"].startswith("duplicate: ")
    assert [x["seq"] for x in results[:5]] == [1, 2, 3, 4, 5]


def test_export_streams_every_event(client: TestClient) -> None:
    s = Signer()
    envs = [proposal(s, f"Idea {i}") for i in range(30)]
    client.post("/api/v1/events:batch", content=b"\n".join(orjson.dumps(e) for e in envs))
    lines = client.get("/api/v1/export").text.splitlines()
    rows = [orjson.loads(x) for x in lines]
    assert [r["seq"] for r in rows] == list(range(1, 31))
    assert [{"payload": r["payload"], "sig": r["sig"]} for r in rows] == envs
    tail = client.get("/api/v1/export?after_seq=28").text.splitlines()
    assert [orjson.loads(x)["seq"] for x in tail] == [29, 30]


def test_well_known_health_metrics_openapi(client: TestClient) -> None:
    wk = client.get("/.well-known/mycelium.json").json()
    assert wk["protocol_version"] == 1
    assert wk["limits"]["max_payload_bytes"] == 65536
    assert {"author_rate", "address_rate", "max_connections_per_address", "max_subscriptions_per_connection",
            "max_frame_bytes", "min_pow_bits", "max_future_ms"} <= set(wk["limits"])
    assert client.get("/healthz").json()["ok"] is True
    client.post("/api/v1/events", json=agent(Signer()))
    metrics = client.get("/metrics").text
    assert 'mycelium_events_accepted_total{kind="agent"} 1.0' in metrics
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/api/v1/events" in spec["paths"]


def test_rate_limited_gets_429_with_retry_after(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    from forum.app import create_app
    from tests.forum.conftest import make_settings

    s = Signer()
    settings = make_settings(tmp_path, database_url, author_rate=0.001, author_burst=2)
    with TestClient(create_app(settings)) as c:
        codes = [c.post("/api/v1/events", json=proposal(s, f"P{i}")).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        r = c.post("/api/v1/events", json=proposal(s, "P4"))
        assert r.json()["reason"] == "rate-limited" and int(r.headers["retry-after"]) >= 1


def test_only_ascii_decimal_query_integers(client: TestClient) -> None:
    for url in ("/api/v1/events?limit=%C2%B2", "/api/v1/events?before_seq=%D9%A3", "/api/v1/export?after_seq=%C2%B2",
                "/api/v1/events?before_seq=" + "9" * 40, "/api/v1/scores?limit=%C2%B2"):
        r = client.get(url)
        assert r.status_code == 400 and r.json()["reason"] == "invalid", url


def test_batch_larger_than_the_burst_is_too_large(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    from forum.app import create_app
    from tests.forum.conftest import make_settings

    s = Signer()
    with TestClient(create_app(make_settings(tmp_path, database_url, address_rate=10, address_burst=3))) as c:
        body = b"\n".join(orjson.dumps(proposal(s, f"P{i}")) for i in range(4))
        r = c.post("/api/v1/events:batch", content=body)
        assert r.status_code == 413 and r.json()["reason"] == "too-large"


def test_unknown_page_is_html_unknown_api_path_is_json(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["reason"] == "not-found"


def test_the_core_app_takes_its_public_web_as_an_argument(tmp_path: Path) -> None:
    """forum.app.create_app alone serves no pages (JSON 404 everywhere); the site adds them."""
    from feeds.site import site
    from forum.app import create_app
    from forum.server import APP, full_app
    from tests.forum.conftest import make_settings

    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'forum.db'}")
    with TestClient(create_app(settings)) as c:
        r = c.get("/")
        assert r.status_code == 404 and r.json()["reason"] == "not-found"
        assert c.get("/healthz").status_code == 200
    with TestClient(create_app(settings, site=site())) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["x-frame-options"] == "DENY"  # the site's middleware
    assert APP == "feeds.site:create_app"
    with TestClient(full_app(settings)) as c:
        assert c.get("/no/such/page").headers["content-type"].startswith("text/html")
