"""Ranked views and honest lists, in process against the real scores engine: the ranking
matches /api/v1/scores, one current rating per agent, experiments grouped by community,
baseline-0 metrics, the badges fragment live.js swaps in."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from feeds import ranking
from tests.feeds.conftest import Publish, wait_for_scores
from tests.feeds.helpers import Agent, outcome_body, proposal_body, rating_body
from tests.support.timeouts import timeout

CARD = re.compile(r'<li class="post kind-proposal" id="e-([0-9a-f]{64})"')


def card_ids(html: str) -> list[str]:
    main = html.split('<main id="main"', 1)[1]
    return CARD.findall(main)


@pytest.fixture
def forum(client: TestClient, publish: Publish) -> dict[str, Any]:
    """Six proposals rated by eight agents with different means; two communities try some."""
    proposers = [Agent(f"proposer-{i}") for i in range(2)]
    raters = [Agent(f"ranker-{i}") for i in range(8)]
    elm, oak = Agent("elm-community"), Agent("oak-community")
    publish(
        elm.envelope("community", {"name": "Elm Street", "about": "Forty houses.", "place": "Testville"}),
        oak.envelope("community", {"name": "Oak Lane", "about": "A lane.", "place": "Otherton"}),
    )
    props = [
        publish(proposers[i % 2].envelope("proposal", proposal_body(f"Idea {i}", tags=["commons"] if i % 2 else ["transport"])))
        for i in range(6)
    ]
    for j, r in enumerate(raters):
        for i, p in enumerate(props):
            score = max(-1.0, min(1.0, (i - 2.5) / 3 + (0.1 if j % 2 else -0.1)))
            publish(r.envelope("rating", rating_body(p, round(score, 2))))
    # Elm: a running report, then the completed one (one experiment); Oak: a failure.
    o_run = publish(elm.envelope("outcome", outcome_body(props[1], status="running", verdict=None, period={"start": "2026-01-01"})))
    o_done = publish(elm.envelope("outcome", outcome_body(props[1])))
    o_oak = publish(oak.envelope("outcome", outcome_body(props[1], verdict="failure")))
    publish(elm.envelope("outcome", outcome_body(props[4])))
    return {"props": props, "raters": raters, "elm": elm, "oak": oak, "o_run": o_run, "o_done": o_done, "o_oak": o_oak}


def wait_for_outcomes(client: TestClient, targets: list[str]) -> None:
    """Outcome summaries come with the engine's whole cheap document, rebuilt a little after the running sums."""
    deadline = time.monotonic() + timeout(20)
    while not all(client.get(f"/api/v1/scores/{t}").json().get("outcomes") for t in targets):
        assert time.monotonic() < deadline, "outcome summaries never appeared"
        time.sleep(0.05)


def api_order(client: TestClient, sort: str) -> list[str]:
    r = client.get(f"/api/v1/scores?kind=proposal&sort={sort}&limit=1000")
    assert r.status_code == 200
    return [v["target"] for v in r.json()["scores"]]


def test_ranked_order_matches_the_scores_api(client: TestClient, forum: dict[str, Any]) -> None:
    props = forum["props"]
    wait_for_scores(client, props[-1], fitted=False)
    wait_for_outcomes(client, [props[1], props[4]])
    time.sleep(ranking.MIN_AGE_S)  # a ranking read before the summaries is reused for this long
    top = card_ids(client.get("/proposals?sort=top").text)
    assert top == [t for t in api_order(client, "shrunk_mean") if t in props]
    assert top[0] == props[5] and top[-1] == props[0]
    success = card_ids(client.get("/proposals?sort=success").text)
    assert success == [t for t in api_order(client, "success_rate") if t in success] and set(success) == {props[1], props[4]}  # both have a success
    tried = card_ids(client.get("/proposals?sort=tried").text)
    assert tried == [props[1], props[4]]  # two communities, then one
    # A tag narrows the ranking and keeps its order; a community's name narrows it to what it tried.
    tagged = card_ids(client.get("/proposals?sort=top&tag=commons").text)
    assert tagged == [t for t in top if t in {props[1], props[3], props[5]}]
    assert card_ids(client.get("/proposals?sort=top&community=elm street").text) == [props[4], props[1]]
    assert "Which community?" in client.get("/proposals?sort=top&community=nowhere").text
    # newest is the log's order: a redirect to the pages that already page through it
    r = client.get("/proposals?sort=new", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/?kind=proposal"
    for bad in ("/proposals?sort=best", "/proposals?offset=-1", "/proposals?tag=Not%20A%20Tag"):
        assert client.get(bad).status_code == 400


def test_agreement_lists_only_what_bridging_found(client: TestClient, forum: dict[str, Any]) -> None:
    props = forum["props"]
    view = wait_for_scores(client, props[-1], fitted=True)
    assert view["bridging"] is not None
    html = client.get("/proposals?sort=agreement").text
    shown = card_ids(html)
    for t in shown:
        b = client.get(f"/api/v1/scores/{t}").json()["bridging"]
        assert b is not None and b["score"] is not None
    views = [client.get(f"/api/v1/scores/{t}").json()["bridging"] for t in shown]
    assert all(b["status"] == "bridging" for b in views)  # only where agents agree
    assert [b["score"] for b in views] == sorted((b["score"] for b in views), reverse=True)
    # The front page leads with the two highlights, and "newest" beside them.
    home = client.get("/").text
    assert "Where agents agree" in home and "What worked" in home and "Newest" in home


def test_one_current_rating_per_agent_history_on_demand(client: TestClient, publish: Publish, forum: dict[str, Any]) -> None:
    p, r0 = forum["props"][0], forum["raters"][0]
    publish(r0.envelope("rating", rating_body(p, 0.9, note="Changed my mind.")))
    page = client.get(f"/proposals/{p}").text
    assert 'class="chart history"' in page and f"/api/v1/scores/{p}/history" in page  # the score history chart
    ratings = page.split('data-region="ratings"', 1)[1].split("</section>", 1)[0]
    assert ratings.count('<li class="rating') == 8  # eight agents, eight current ratings
    assert "Changed my mind." in ratings and "replaced" not in ratings.split("<ul", 1)[1]
    history = client.get(f"/proposals/{p}?ratings=all").text.split('data-region="ratings"', 1)[1].split("</section>", 1)[0]
    assert history.count('<li class="rating') == 9 and history.count('<li class="rating replaced">') == 1


def test_experiments_grouped_by_community(client: TestClient, publish: Publish, forum: dict[str, Any]) -> None:
    p1 = forum["props"][1]
    page = client.get(f"/proposals/{p1}").text
    outcomes = page.split('data-region="outcomes"', 1)[1].split("</section>", 1)[0]
    # Oak's report is the newest: first; Elm's completed report leads Elm's group, its running one is folded.
    order = re.findall(r'id="o-([0-9a-f]{64})"', outcomes)
    assert order == [forum["o_oak"], forum["o_done"], forum["o_run"]]
    assert "1 earlier report by" in outcomes and outcomes.index("<details>") > outcomes.index(forum["o_done"])
    assert "2 communities" in outcomes
    comm = client.get(f"/communities/{forum['elm'].did}").text
    assert re.search(r'Experiments it reported <span class="count">2</span>', comm) and "3 reports" in comm


def test_metric_with_baseline_zero(client: TestClient, publish: Publish, forum: dict[str, Any]) -> None:
    elm = forum["elm"]
    body = outcome_body(forum["props"][2])
    body["metrics"] = [{"name": "Repair cafés held", "unit": "events", "baseline": 0, "observed": 6, "n": 1, "higher_is_better": True}]
    oid = publish(elm.envelope("outcome", body))
    wait_for_scores(client, forum["props"][2], fitted=False)
    page = client.get(f"/proposals/{forum['props'][2]}").text
    assert "+6 from 0" in page and "Not pooled" in page  # a baseline of 0 has no ratio
    assert "+6 from 0" in client.get(f"/outcomes/{oid}").text


def test_badges_fragment_follows_the_engine(client: TestClient, publish: Publish, forum: dict[str, Any]) -> None:
    p = forum["props"][0]
    wait_for_scores(client, p, fitted=False)
    frag = client.get(f"/fragments/badges?t={p}")
    assert frag.status_code == 200 and frag.headers["cache-control"] == "no-store"
    assert f'data-badges="{p}"' in frag.text and "8 raters" in frag.text
    newcomer = Agent("late-rater")
    publish(newcomer.envelope("rating", rating_body(p, 1.0)))
    deadline = time.monotonic() + timeout(10)
    while "9 raters" not in client.get(f"/fragments/badges?t={p}").text:
        assert time.monotonic() < deadline, "the badge never showed the new rater"
        time.sleep(0.05)
    assert client.get("/fragments/badges?t=nope").status_code == 400
    assert client.get("/fragments/badges?t=" + ",".join([p] * 101)).status_code == 400


def test_api_page_renders_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    page = client.get("/api")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path, item in spec["paths"].items():
        for method in item:
            assert f'id="{method}-{path}"' in page.text, (method, path)
    assert "/api/v1/scores" in spec["paths"] and "/api/v1/search" in spec["paths"]
    assert 'id="websocket"' in page.text and "ws://testserver/ws" in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from another host
    assert 'href="/api"' in client.get("/").text  # the footer links it


def test_lean_badge_is_the_full_views_badge(client: TestClient, forum: dict[str, Any]) -> None:
    """``engine_badge`` (what list cards read) shows what the engine's whole view ``get`` would:
    every rated or reported target, fitted statuses and outcome summaries included."""
    from feeds.scorecards import badge_from_engine, engine_badge

    props = forum["props"]
    wait_for_scores(client, props[0])
    wait_for_outcomes(client, [props[1], props[4]])
    engine = client.app.state.scores  # type: ignore[attr-defined]
    targets = [*props, forum["o_done"], forum["o_oak"], forum["elm"].did, "0" * 64]
    seen = {"bridging": 0, "outcomes": 0}
    for t in targets:
        full, lean = engine.get(t), engine_badge(engine, t)
        assert (full is None) == (lean is None), t
        if full is not None:
            assert badge_from_engine(lean) == badge_from_engine(full), t
            seen["bridging"] += full["bridging"] is not None
            seen["outcomes"] += full["outcomes"] is not None
    assert seen["bridging"] and seen["outcomes"] == 2  # fitted statuses and outcome summaries were compared
