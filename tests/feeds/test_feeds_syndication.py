"""Atom and JSON Feed: every feed parses cleanly, entries carry event ids, dates and page links."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
import orjson
import pytest
from starlette.testclient import TestClient

from feeds.site import create_app
from tests.feeds.conftest import Publish, publish_with, settings
from tests.feeds.helpers import Agent, outcome_body, proposal_body, rating_body

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
BASE = "https://forum.example"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, Publish]]:
    with TestClient(create_app(settings(tmp_path, public_url=BASE + "/"))) as c:
        yield c, publish_with(c)


@pytest.fixture
def content(site: tuple[TestClient, Publish]) -> dict[str, Any]:
    c, publish = site
    alice, elm = Agent("feed-alice"), Agent("feed-elm")
    publish(alice.envelope("agent", {"name": "Alice & <Co>", "about": "x"}))
    publish(elm.envelope("community", {"name": "Elm Street", "about": "y", "place": "Z"}))
    created = {}
    p1_env = alice.envelope("proposal", proposal_body("Tool library <b>now</b>", tags=["commons"]), created_at=1_700_000_000_000)
    created["p1"] = 1_700_000_000_000
    p1 = publish(p1_env)
    p2 = publish(alice.envelope("proposal", proposal_body("Control\x01chars\x1f and \ufffe in a title", text="Text with \x0b and \x00.", tags=["misc"])))
    o1 = publish(elm.envelope("outcome", outcome_body(p1)))
    publish(Agent("feed-rater").envelope("rating", rating_body(p1, 0.5)))
    return {"c": c, "alice": alice, "elm": elm, "p1": p1, "p2": p2, "o1": o1, "created": created}


def _feeds(w: dict[str, Any]) -> dict[str, list[str]]:
    """Feed path (without extension) -> the event ids it must list, newest first."""
    return {
        "/feeds/all": [w["o1"], w["p2"], w["p1"]],
        "/feeds/proposals": [w["p2"], w["p1"]],
        "/feeds/outcomes": [w["o1"]],
        f"/feeds/communities/{w['elm'].did}": [w["o1"]],
        "/feeds/tags/commons": [w["p1"]],
        f"/feeds/proposals/{w['p1']}": [w["o1"]],
    }


def test_atom_feeds_parse_cleanly(content: dict[str, Any]) -> None:
    c: TestClient = content["c"]
    for path, expected in _feeds(content).items():
        r = c.get(path + ".atom")
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
        assert r.headers["x-content-type-options"] == "nosniff"
        d = feedparser.parse(r.content)
        assert not d.bozo, (path, d.get("bozo_exception"))
        assert d.version == "atom10"
        assert d.feed.id == BASE + path + ".atom"
        links = {(lk.rel, lk.href) for lk in d.feed.links}
        assert ("self", BASE + path + ".atom") in links
        assert any(rel == "alternate" and href.startswith(BASE + "/") for rel, href in links)
        assert [e.id for e in d.entries] == [f"{BASE}/events/{eid}" for eid in expected], path
        for e, eid in zip(d.entries, expected, strict=True):
            kind_path = "/outcomes/" if eid == content["o1"] else "/proposals/"
            assert e.link == BASE + kind_path + eid
            assert e.published_parsed is not None and e.updated_parsed is not None
            assert e.author_detail.href.startswith(BASE + "/")
        if path == "/feeds/tags/commons":
            entry = d.entries[0]
            assert calendar.timegm(entry.published_parsed) == content["created"]["p1"] // 1000
            assert entry.title == "Tool library <b>now</b>"
            assert entry.author == "Alice & <Co>"
            assert entry.tags[0].term == "commons"
            assert "<h3>Plan</h3>" in entry.content[0].value


def validate_json_feed(doc: Any, self_url: str) -> None:
    """The rules of JSON Feed 1.1 (https://jsonfeed.org/version/1.1) that apply to our feeds."""
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    assert doc["feed_url"] == self_url
    assert isinstance(doc["home_page_url"], str) and doc["home_page_url"].startswith(("http://", "https://"))
    assert isinstance(doc["items"], list)
    for key in doc:
        assert key in {"version", "title", "home_page_url", "feed_url", "description", "language", "items", "next_url"} or key.startswith("_")
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        for field in ("date_published", "date_modified"):
            assert RFC3339.match(item[field]), item[field]
        assert datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
        assert item["url"].startswith(("http://", "https://"))
        for author in item["authors"]:
            assert isinstance(author["name"], str) and author["url"].startswith(("http://", "https://"))
        if "tags" in item:
            assert all(isinstance(t, str) for t in item["tags"])


def test_json_feeds_follow_the_spec(content: dict[str, Any]) -> None:
    c: TestClient = content["c"]
    for path, expected in _feeds(content).items():
        r = c.get(path + ".json")
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "application/feed+json; charset=utf-8"
        doc = orjson.loads(r.content)
        validate_json_feed(doc, BASE + path + ".json")
        assert [i["id"] for i in doc["items"]] == expected
        for item in doc["items"]:
            assert item["_mycelium"]["event_id"] == item["id"]
            assert item["external_url"] == f"{BASE}/events/{item['id']}"
            assert item["url"].endswith(item["id"])
        # feedparser 6.0 reads only XML feeds; JSON Feed is checked against the spec above.


def test_feeds_without_public_url_use_the_request_base(client: TestClient, publish: Publish) -> None:
    pid = publish(Agent("base").envelope("proposal", proposal_body("Base URL")))
    d = feedparser.parse(client.get("/feeds/all.atom").content)
    assert not d.bozo
    assert d.entries[0].link == f"http://testserver/proposals/{pid}"
    assert d.feed.id == "http://testserver/feeds/all.atom"


def test_empty_feeds_are_valid(client: TestClient) -> None:
    d = feedparser.parse(client.get("/feeds/all.atom").content)
    assert not d.bozo and d.entries == []
    validate_json_feed(orjson.loads(client.get("/feeds/all.json").content), "http://testserver/feeds/all.json")


def test_feeds_answer_conditional_requests(content: dict[str, Any], site: tuple[TestClient, Publish]) -> None:
    c, publish = site
    r = c.get("/feeds/all.atom")
    etag = r.headers["etag"]
    again = c.get("/feeds/all.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    publish(content["alice"].envelope("proposal", proposal_body("Another")))
    assert c.get("/feeds/all.atom", headers={"If-None-Match": etag}).status_code == 200


def test_pages_advertise_feeds_that_exist(content: dict[str, Any]) -> None:
    from tests.feeds.test_feeds_pages import Page

    c: TestClient = content["c"]
    pages = ["/", "/?kind=proposal", "/?kind=outcome", "/?tag=commons", f"/communities/{content['elm'].did}", f"/proposals/{content['p1']}", f"/outcomes/{content['o1']}"]
    seen = set()
    for path in pages:
        page = Page(c.get(path).text)
        for link in page.find("link", rel="alternate"):
            href = str(link["href"])
            seen.add(href)
            r = c.get(href)
            assert r.status_code == 200, href
            assert r.headers["content-type"].startswith(str(link["type"])), href
    assert {"/feeds/all.atom", "/feeds/proposals.atom", "/feeds/outcomes.json", "/feeds/tags/commons.atom", f"/feeds/communities/{content['elm'].did}.json", f"/feeds/proposals/{content['p1']}.atom"} <= seen
