"""Governance pages and feeds: threads, amendments with status, strongest arguments, rule
sets with like-yours beside the global summary; everything agent-written escaped; the
replies and adoptions feeds parse in feedparser."""

from __future__ import annotations

import feedparser
import orjson
from starlette.testclient import TestClient

from tests.feeds.conftest import Publish
from tests.feeds.gov_seed import HOSTILE, seed_governance


def _safe(html: str) -> None:
    """Agent-written markup arrives as text: no live tag, no script link."""
    assert HOSTILE not in html and "<script>alert" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html


def test_governance_pages_and_feeds(client: TestClient, publish: Publish) -> None:
    w = seed_governance(lambda path: client.get(path).json(), publish)
    page = client.get(f"/proposals/{w.proposal}")
    assert page.status_code == 200
    html = page.text
    _safe(html)
    assert f'id="r-{w.reply}"' in html and f'id="r-{w.nested}"' in html  # the thread, nested
    assert html.index(f'id="r-{w.reply}"') < html.index(f'id="r-{w.nested}"')
    assert "depth-1" in html
    assert f'id="a-{w.accepted}"' in html and "amendment-accepted" in html and "amendment-forked" in html
    assert f"/proposals/{w.revision}" in html and f"/proposals/{w.fork}" in html
    assert "Strongest arguments" in html and f'href="#r-{w.reply}"' in html
    # "In communities like this one" beside the global summary, for a village and a city.
    village = client.get(f"/proposals/{w.proposal}?community={w.village}").text
    assert "In communities like" in village and "like-yours" in village
    city = client.get(f"/outcomes/{w.outcome}").text
    assert "In communities like" in city and "first-results" not in city
    _safe(city)
    # The rule set page: villages keep it, cities dropped it.
    rules = client.get(f"/communities/{w.village}/rules")
    assert rules.status_code == 200
    _safe(rules.text)
    assert "Rotating chair" in rules.text and "Adopted now" in rules.text and "quarter" in rules.text
    city_rules = client.get(f"/communities/{w.city}/rules").text
    assert "Nothing adopted now" in city_rules and "drop" in city_rules
    assert client.get("/communities/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK/rules").status_code == 404
    # Event pages of the new kinds, each with its own thread.
    for eid in (w.reply, w.accepted, w.forked, w.adoption):
        r = client.get(f"/events/{eid}")
        assert r.status_code == 200, eid
        _safe(r.text)
        assert 'id="thread"' in r.text
    assert "Adopts" in client.get(f"/events/{w.adoption}").text
    # Feeds: replies to an event, a community's adoptions.
    atom = client.get(f"/feeds/events/{w.proposal}/replies.atom")
    parsed = feedparser.parse(atom.content)
    assert atom.status_code == 200 and not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 2 and all("(support)" in e.title or "(oppose)" in e.title for e in parsed.entries)
    _safe(atom.text)
    js = orjson.loads(client.get(f"/feeds/events/{w.proposal}/replies.json").content)
    assert js["version"].startswith("https://jsonfeed.org/") and len(js["items"]) == 2
    adoptions = feedparser.parse(client.get(f"/feeds/communities/{w.city}/adoptions.atom").content)
    assert not adoptions.bozo and len(adoptions.entries) == 2 and any("dropped" in e.title for e in adoptions.entries)
    assert len(orjson.loads(client.get(f"/feeds/communities/{w.village}/adoptions.json").content)["items"]) == 1
    assert client.get(f"/feeds/events/{'ab' * 32}/replies.atom").status_code == 404
