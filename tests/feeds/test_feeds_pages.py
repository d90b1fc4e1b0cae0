"""The public pages, in process: what each shows, filters, paging, retractions, profiles,
redirects, error pages, security headers and the scores adapter."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from feeds import queries, scorecards
from feeds.render import signed
from feeds.security import CONTENT_SECURITY_POLICY
from tests.feeds.conftest import Publish, wait_for_scores
from tests.feeds.helpers import Agent, outcome_body, proposal_body, rating_body


class Page(HTMLParser):
    """Tags and attributes of a page, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.script_text if self._in_script else self.text_parts).append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def ids(self, prefix: str = "e-") -> list[str]:
        return [str(a["id"])[len(prefix) :] for _, a in self.tags if str(a.get("id", "")).startswith(prefix)]


def get_page(client: TestClient, path: str, status: int = 200) -> Page:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    return Page(r.text)


def assert_safe_markup(page: Page) -> None:
    """No inline script or style, no event handlers, scripts only from /static/."""
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in ("href", "src", "action") and value:
                assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), (tag, name, value)
        if tag == "script":
            assert str(attrs.get("src", "")).startswith("/static/"), attrs
        assert tag not in ("style", "iframe", "object", "embed", "base"), tag
    assert "".join(page.script_text).strip() == ""


@pytest.fixture
def world(client: TestClient, publish: Publish) -> dict[str, Any]:
    """Two proposers, a community, five raters, proposals (one revised), outcomes and ratings."""
    alice, bob, elm, oak = Agent("alice"), Agent("bob"), Agent("elm-street"), Agent("oak-lane")
    raters = [Agent(f"rater-{i}") for i in range(5)]
    publish(
        alice.envelope("agent", {"name": "Alice Planner", "about": "Proposes tool libraries.", "owner": "Alice's Lab"}),
        bob.envelope("agent", {"name": "Bob", "about": "Proposes other things."}),
        elm.envelope("community", {"name": "Elm Street", "about": "A street of forty houses.", "place": "Testville"}),
        oak.envelope("community", {"name": "Oak Lane", "about": "A lane.", "place": "Testville"}),
    )
    p1 = publish(alice.envelope("proposal", proposal_body("Tool library", tags=["commons", "tools"], criteria=["fairness-equity"])))
    p2 = publish(bob.envelope("proposal", proposal_body("Night buses", tags=["transport"])))
    p1b = publish(alice.envelope("proposal", proposal_body("Tool library, second version", tags=["commons"], revises=p1)))
    o1 = publish(elm.envelope("outcome", outcome_body(p1)))
    o2 = publish(oak.envelope("outcome", outcome_body(p1, status="running", verdict=None, period={"start": "2026-02-01"})))
    for i, r in enumerate(raters):
        publish(r.envelope("rating", rating_body(p1, 0.2 * i)))
    publish(raters[0].envelope("rating", rating_body(o1, 0.9, note="Convincing numbers.")))
    publish(raters[1].envelope("rating", rating_body(alice.did, 0.6, note="Careful proposer.")))
    return {
        "alice": alice, "bob": bob, "elm": elm, "oak": oak, "raters": raters,
        "p1": p1, "p2": p2, "p1b": p1b, "o1": o1, "o2": o2,
    }  # fmt: skip


# --------------------------------------------------------------------------- every page


def _all_paths(w: dict[str, Any]) -> list[str]:
    return [
        "/",
        "/?kind=proposal",
        "/?kind=outcome",
        "/?tag=commons",
        f"/?community={w['elm'].did}",
        f"/proposals/{w['p1']}",
        f"/proposals/{w['p1b']}",
        f"/outcomes/{w['o1']}",
        f"/outcomes/{w['o2']}",
        f"/communities/{w['elm'].did}",
        f"/agents/{w['alice'].did}",
        f"/agents/{w['raters'][0].did}",
        "/about/scores",
    ]


def test_every_page_has_security_headers_and_safe_markup(client: TestClient, world: dict[str, Any]) -> None:
    for path in _all_paths(world):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        page = Page(r.text)
        assert_safe_markup(page)
        assert page.find("link", rel="stylesheet", href="/static/style.css")
        assert page.find("meta", name="viewport")
        # every page advertises at least the site-wide feeds
        alternates = {a["href"] for a in page.find("link", rel="alternate")}
        assert {"/feeds/all.atom", "/feeds/all.json"} <= alternates, path
        # every score links to its explanation
        if "/about/" not in path:
            assert any(str(a.get("href", "")).startswith("/about/scores") for a in page.find("a")), path
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def test_static_files_have_exact_types(client: TestClient) -> None:
    js = client.get("/static/live.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "innerHTML" not in js.text and "eval(" not in js.text
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text  # nothing from elsewhere
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


# --------------------------------------------------------------------------- home


def test_home_lists_proposals_and_outcomes_newest_first_with_badges(client: TestClient, world: dict[str, Any]) -> None:
    wait_for_scores(client, world["p1"], fitted=False)
    page = get_page(client, "/")
    assert page.ids() == [world["o2"], world["o1"], world["p1b"], world["p2"], world["p1"]]
    text = page.text
    assert "Tried: Tool library" in text and "Elm Street" in text and "Alice Planner" in text
    feed = page.find("ol", id="feed")[0]
    assert feed["data-live"] == "/live?" and feed["data-fragment"] == "/fragments/feed?"
    assert page.find("script", src="/static/live.js")
    # p1: five raters, mean 0.4, two communities tried it
    item = re.search(rf'id="e-{world["p1"]}".*?</article>', client.get("/").text, re.S)
    assert item is not None
    chunk = Page(item.group(0)).text
    assert "mean +0.40" in chunk and "5 raters" in chunk and "2 communities tried it" in chunk
    assert "Too few raters" not in chunk  # five raters: the engine decides (or "not computed")


def test_home_filters(client: TestClient, world: dict[str, Any]) -> None:
    assert get_page(client, "/?kind=proposal").ids() == [world["p1b"], world["p2"], world["p1"]]
    assert get_page(client, "/?kind=outcome").ids() == [world["o2"], world["o1"]]
    assert get_page(client, "/?tag=commons").ids() == [world["p1b"], world["p1"]]
    assert get_page(client, "/?tag=transport&kind=outcome").ids() == [world["p2"]]  # tags belong to proposals
    assert get_page(client, f"/?community={world['elm'].did}").ids() == [world["o1"]]
    assert get_page(client, f"/?community={world['alice'].did}&kind=proposal").ids() == [world["p1b"], world["p1"]]
    # the filtered page advertises its own feed
    tag_page = get_page(client, "/?tag=commons")
    assert {a["href"] for a in tag_page.find("link", rel="alternate")} >= {"/feeds/tags/commons.atom", "/feeds/tags/commons.json"}
    comm_page = get_page(client, f"/?community={world['elm'].did}")
    assert f"/feeds/communities/{world['elm'].did}.atom" in {a["href"] for a in comm_page.find("link", rel="alternate")}
    for bad in ("/?kind=rating", "/?tag=Not%20A%20Tag", "/?before=abc", "/?before=5&after=3"):
        page = get_page(client, bad, status=400)
        assert "Bad request" in page.text


def test_community_filter_by_name_never_400(client: TestClient, world: dict[str, Any]) -> None:
    elm = world["elm"].did
    # A name (any case, part of it, accents folded) finds the community; the page then filters by its did:key.
    for text in ("Elm Street", "elm street", "ELM", "Élm"):
        page = get_page(client, "/?" + urlencode({"community": text}))
        assert page.ids() == [world["o1"]], text
    # Anything else is a page that says so, never a 400.
    for text in ("did:key:nope", "no such place", "<script>alert(1)</script>", "x" * 500):
        page = get_page(client, "/?" + urlencode({"community": text}))
        assert "Which community?" in page.text and not [t for t, _ in page.tags if t == "script"]
    # Two matches: a choice of both, each link filtering by did:key.
    both = get_page(client, "/?community=e")  # in "Elm Street", "Oak Lane" and their place "Testville"
    links = [unquote(a.get("href") or "") for a in both.find("a")]
    assert any(f"community={elm}" in link for link in links)
    assert any(f"community={world['oak'].did}" in link for link in links)
    # The directory lists communities with their place and experiments, filtered by name.
    d = get_page(client, "/communities?q=elm")
    assert "Elm Street" in d.text and "Testville" in d.text and "1 experiment" in d.text
    assert "Oak Lane" not in d.text
    assert "No community" in get_page(client, "/communities?q=zzz").text


def test_home_paging_by_seq_cursor(client: TestClient, publish: Publish) -> None:
    a = Agent("pager")
    ids = [publish(a.envelope("proposal", proposal_body(f"Proposal {i}"))) for i in range(30)]
    newest_first = list(reversed(ids))
    r = client.get("/")
    first = Page(r.text)
    assert first.ids() == newest_first[:25]
    older = [x["href"] for x in first.find("a", rel="next")]
    assert len(older) == 1 and not first.find("a", rel="prev")
    second = get_page(client, str(older[0]))
    assert second.ids() == newest_first[25:]
    assert not second.find("a", rel="next")
    newer = second.find("a", rel="prev")[0]["href"]
    back = get_page(client, str(newer))
    assert back.ids() == newest_first[:25]
    # only the first page goes live
    assert "data-live" not in second.find("ol", id="feed")[0]
    # cursors are seqs
    q = parse_qs(urlsplit(str(older[0])).query)
    assert q["before"][0].isdigit()


def test_fragment_returns_only_newer_items(client: TestClient, world: dict[str, Any], publish: Publish) -> None:
    page = get_page(client, "/")
    after = page.find("ol", id="feed")[0]["data-after"]
    assert get_page(client, f"/fragments/feed?after={after}").ids() == []
    p3 = publish(world["bob"].envelope("proposal", proposal_body("Street trees", tags=["green"])))
    r = client.get(f"/fragments/feed?after={after}")
    assert r.headers["cache-control"] == "no-store"
    assert Page(r.text).ids() == [p3]
    assert Page(client.get(f"/fragments/feed?after={after}&kind=outcome").text).ids() == []
    assert Page(client.get(f"/fragments/feed?after={after}&tag=green").text).ids() == [p3]
    assert client.get("/fragments/feed").status_code == 400


# --------------------------------------------------------------------------- proposal, outcome


def test_proposal_page(client: TestClient, world: dict[str, Any]) -> None:
    wait_for_scores(client, world["p1"], fitted=False)
    r = client.get(f"/proposals/{world['p1']}")
    page = Page(r.text)
    text = page.text
    assert "Tool library" in text and "Alice Planner" in text and "Summary of Tool library." in text
    assert page.find("h3") and "Plan" in text  # Markdown "## Plan" rendered one level down
    # versions: it was revised
    assert page.find("a", href=f"/proposals/{world['p1b']}")
    assert "There is a newer version" in text
    # outcome timeline: one experiment per community, the latest report first, with metrics
    outcome_ids = [a["href"] for a in page.find("a") if str(a.get("href", "")).startswith("/outcomes/")]
    assert outcome_ids == [f"/outcomes/{world['o2']}", f"/outcomes/{world['o1']}"]
    assert "Tools lent" in text and "+150%" in text and "−50%" not in text and "-50%" in text
    assert "2 communities reported" in text
    # scores: mean, histogram, criteria bars, the bridging sentence
    assert "+0.40" in text and "Raters 5" in text
    assert r.text.count('class="chart histogram"') == 1
    assert "Fairness equity" in text and "Affordability" in text
    from raters.bridging import STATUS_SENTENCES

    assert any(w in text for w in (*STATUS_SENTENCES.values(), "has not rated this yet"))
    # its own feed is advertised
    alternates = {a["href"] for a in page.find("link", rel="alternate")}
    assert {f"/feeds/proposals/{world['p1']}.atom", f"/feeds/proposals/{world['p1']}.json"} <= alternates
    # the revision points back
    rev = get_page(client, f"/proposals/{world['p1b']}")
    assert rev.find("a", href=f"/proposals/{world['p1']}") and "This version" in rev.text


def test_outcome_page(client: TestClient, world: dict[str, Any]) -> None:
    page = get_page(client, f"/outcomes/{world['o1']}")
    text = page.text
    assert "Elm Street" in text and "Tool library" in text and "Completed" in text.title()
    assert "Tools lent" in text and "Waiting time" in text and "lower is better" in text
    assert page.find("strong") and "worked" in text  # summary Markdown rendered
    ev = page.find("a", href="https://example.org/report")
    assert ev and "noopener" in str(ev[0]["rel"]) and "nofollow" in str(ev[0]["rel"])
    assert "Convincing numbers." in text
    running = get_page(client, f"/outcomes/{world['o2']}")
    assert "ongoing" in running.text


def test_community_and_agent_pages(client: TestClient, world: dict[str, Any]) -> None:
    comm = get_page(client, f"/communities/{world['elm'].did}")
    assert "Elm Street" in comm.text and "Testville" in comm.text and "A street of forty houses." in comm.text
    assert comm.ids() == [world["o1"]]
    assert {f"/feeds/communities/{world['elm'].did}.atom"} <= {a["href"] for a in comm.find("link", rel="alternate")}

    alice = get_page(client, f"/agents/{world['alice'].did}")
    assert "Alice Planner" in alice.text and "Alice's Lab" in alice.text
    assert alice.ids() == [world["p1b"], world["p1"]]
    assert "Careful proposer." in alice.text  # how others rated it
    rater = get_page(client, f"/agents/{world['raters'][1].did}")
    assert "Ratings it gave" in rater.text and "Tool library" in rater.text and "Alice Planner" in rater.text
    # a community page for a key without a community profile goes to its agent page
    r = client.get(f"/communities/{world['alice'].did}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/agents/{world['alice'].did}"


def test_event_redirects_to_its_page(client: TestClient, world: dict[str, Any]) -> None:
    cases = {
        world["p1"]: f"/proposals/{world['p1']}",
        world["o1"]: f"/outcomes/{world['o1']}",
    }
    for eid, where in cases.items():
        r = client.get(f"/events/{eid}", follow_redirects=False)
        assert r.status_code == 301 and r.headers["location"] == where
    # profiles go to the author's page
    events = client.get("/api/v1/events", params={"kinds": "agent,community", "limit": 10}).json()["events"]
    for e in events:
        r = client.get(f"/events/{e['id']}", follow_redirects=False)
        assert r.status_code == 301
        assert r.headers["location"].startswith(("/agents/did:key:", "/communities/did:key:"))
    # the wrong kind of page redirects too
    r = client.get(f"/proposals/{world['o1']}", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"/outcomes/{world['o1']}"
    # ratings have a generic page
    rating = client.get("/api/v1/events", params={"kinds": "rating", "limit": 1}).json()["events"][0]
    page = get_page(client, f"/events/{rating['id']}")
    assert "A rating of" in page.text and "Score" in page.text


def test_missing_and_malformed_addresses_are_html_404(client: TestClient, world: dict[str, Any]) -> None:
    for path in (
        "/proposals/" + "0" * 64,
        "/proposals/xyz",
        "/outcomes/" + "1" * 64,
        "/events/" + "2" * 64,
        "/agents/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "/agents/not-a-did",
        "/communities/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "/feeds/nothing.atom",
        "/feeds/all.xml",
        "/feeds/proposals/" + "0" * 64 + ".atom",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html"), path
        assert "Not found" in r.text
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    r = client.get("/tags/commons", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/?tag=commons"


# --------------------------------------------------------------------------- retractions, profiles


def test_retracted_events_leave_lists_and_keep_a_note(client: TestClient, world: dict[str, Any], publish: Publish) -> None:
    bob = world["bob"]
    publish(bob.envelope("retraction", {"target": world["p2"], "reason": "Superseded by a better plan."}))
    for path in ("/", "/?kind=proposal", "/?tag=transport", f"/agents/{bob.did}"):
        assert world["p2"] not in get_page(client, path).ids(), path
    page = get_page(client, f"/proposals/{world['p2']}")
    assert "Retracted." in page.text and "Superseded by a better plan." in page.text
    assert page.find("details")  # the text stays readable on request
    for feed in ("/feeds/all.json", "/feeds/proposals.json", "/feeds/tags/transport.json"):
        assert world["p2"] not in client.get(feed).text
    # a retracted outcome leaves the proposal's timeline
    publish(world["oak"].envelope("retraction", {"target": world["o2"]}))
    prop = get_page(client, f"/proposals/{world['p1']}")
    assert f"/outcomes/{world['o2']}" not in {a["href"] for a in prop.find("a")}
    assert "Retracted." in get_page(client, f"/outcomes/{world['o2']}").text


def test_latest_profile_is_current(client: TestClient, world: dict[str, Any], publish: Publish) -> None:
    alice = world["alice"]
    newest = publish(alice.envelope("agent", {"name": "Alice the Second", "about": "Renamed."}))
    for path in (f"/agents/{alice.did}", f"/proposals/{world['p1']}", "/"):
        text = get_page(client, path).text
        assert "Alice the Second" in text and "Alice Planner" not in text, path
    publish(alice.envelope("retraction", {"target": newest}))
    assert "Alice Planner" in get_page(client, f"/agents/{alice.did}").text
    elm = world["elm"]
    publish(elm.envelope("community", {"name": "Elm Street Association", "about": "Now an association.", "place": "Testville"}))
    comm = get_page(client, f"/communities/{elm.did}")
    assert "Elm Street Association" in comm.text and "Now an association." in comm.text
    assert "Elm Street Association" in get_page(client, f"/outcomes/{world['o1']}").text


# --------------------------------------------------------------------------- scores adapter


def test_scores_from_the_engine_are_shown(client: TestClient, world: dict[str, Any]) -> None:
    """The page shows the forum's real scores engine's view of the target, field by field."""
    view = wait_for_scores(client, world["p1"], fitted=True)
    text = get_page(client, f"/proposals/{world['p1']}").text
    assert f"Raters {view['count']}" in text and signed(view["mean"]) in text
    assert f"Shrunk mean {signed(view['shrunk_mean'])}" in text
    assert f"Computed by {view['algorithm']} {view['version']} as of log entry {view['as_of_seq']}" in text
    assert "Counted directly from the current ratings" not in text
    status = view["bridging"]["status"]
    assert {"bridging": "Bridging across camps", "broad_support": "Broad support", "split": "Split", "rejected": "Rejected", "unclear": "No clear verdict", "insufficient": "Not enough ratings"}[status] in text
    if view["groups"]:  # forum/scores/documents.py's shape: means, votes, consensus
        for i in range(len(view["groups"]["means"])):
            assert f"Group {chr(ord('A') + i)}" in text
    else:
        assert "Opinion groups are not computed yet." in text
    assert f"{view['outcomes']['communities']} communities reported" in text
    assert "Fairness equity" in text
    item = Page(re.search(rf'id="e-{world["p1"]}".*?</article>', client.get("/").text, re.S).group(0)).text  # type: ignore[union-attr]
    assert f"mean {signed(view['mean'])}" in item and f"{view['count']} raters" in item
    assert f"{view['outcomes']['communities']} communities tried it" in item


def test_before_the_engine_has_a_target_pages_count_what_the_engine_then_says(
    client: TestClient, world: dict[str, Any], tmp_path: Path
) -> None:
    """The fallback for a target the engine has not computed yet (a moment after a commit):
    counts from the ratings table and the outcome summary of raters/outcomes.py, as the engine's."""
    view = wait_for_scores(client, world["p1"], fitted=False)
    shown = scorecards.from_engine(view)
    db = sa.create_engine(f"sqlite:///{tmp_path / 'forum.db'}")
    try:
        with db.connect() as conn:
            direct = scorecards.from_ratings_table(conn, world["p1"])
            reports = queries.outcomes_of(conn, world["p1"])
    finally:
        db.dispose()
    assert shown.computed and not direct.computed
    assert (direct.count, direct.mean) == (shown.count, pytest.approx(shown.mean))
    assert {c.key: (c.count, c.mean) for c in direct.criteria} == {c.key: (c.count, pytest.approx(c.mean)) for c in shown.criteria}
    assert len(reports) == 2 and scorecards.summarize_reports(reports) == shown.outcomes
