"""The public pages in a real browser (Debian's Chromium through Playwright).

A real ``forum`` process on a real socket, seeded with the demo forum; every page
kind is loaded at desktop and phone widths, must log no console error, and is
saved to artifacts/screenshots/. A post published over the WebSocket must appear
on the open home page within two seconds; the home page must work with
JavaScript off; hostile posts must run no script and open no dialog anywhere
they are shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson
import pytest
from websockets.sync.client import connect

from tests.feeds.helpers import Agent, event_id, outcome_body, proposal_body, rating_body
from tests.feeds.seed import Demo, demo
from tests.support.chromium import chromium_args, chromium_path, screenshot_dir
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_sync = pytest.importorskip("playwright.sync_api")

SERVER_SETTINGS: dict[str, Any] = {
    "author_rate": 0,
    "address_rate": 0,
    "scores_interval_s": 0.2,
    "scores_min_new_ratings": 1,
    "sqlite_synchronous": "NORMAL",
}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def publish_all(url: str, envelopes: list[dict[str, str]]) -> None:
    with httpx2.Client(base_url=url, timeout=timeout(30)) as http:
        r = http.post("/api/v1/events:batch", content=b"\n".join(orjson.dumps(e) for e in envelopes))
        assert r.status_code == 200, r.text
        bad = [x for x in r.json()["results"] if not x["accepted"]]
        assert not bad, bad[:3]


def wait_scored(url: str, target: str) -> None:
    """Until the forum's scores engine has fitted bridging for ``target`` (so pages show it)."""
    deadline = time.monotonic() + timeout(30)
    with httpx2.Client(base_url=url, timeout=timeout(10)) as http:
        while time.monotonic() < deadline:
            head = http.get("/healthz").json()["head_seq"]
            r = http.get(f"/api/v1/scores/{target}")
            if r.status_code == 200 and r.json().get("bridging") and r.json()["as_of_seq"] >= head:
                return
            time.sleep(0.1)
    raise AssertionError("scores engine did not catch up")


@dataclass
class Site:
    url: str
    demo: Demo
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = ForumProcess(tmp_path_factory.mktemp("feeds-browser"), **SERVER_SETTINGS).start()
    try:
        d = demo()
        for phase in d.phases:
            publish_all(server.url, phase)
        wait_scored(server.url, d.ids["proposal"])
        yield Site(server.url, d)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.fail("Chromium is not installed at /usr/bin/chromium (scripts/test installs it)")
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=chromium_args(), headless=True)
        try:
            yield b
        finally:
            b.close()


class Watch:
    """Console errors, page errors and dialogs of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

        def on_dialog(d: Any) -> None:
            self.dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()

        page.on("dialog", on_dialog)


def _pages(site: Site) -> list[tuple[str, str]]:
    ids = site.demo.ids
    return [
        ("home", "/"),
        ("home-proposals", "/?kind=proposal"),
        ("home-tag", "/?tag=" + "democracy"),
        ("proposal", f"/proposals/{site.demo.proposals[3]}"),
        ("proposal-with-outcomes", f"/proposals/{ids['proposal']}"),
        ("proposal-revision", f"/proposals/{ids['revision']}"),
        ("proposal-retracted", f"/proposals/{ids['retracted']}"),
        ("outcome", f"/outcomes/{ids['outcome']}"),
        ("community", f"/communities/{ids['community']}"),
        ("agent", f"/agents/{ids['agent']}"),
        ("event-rating", f"/events/{ids['rating']}"),
        ("event-criterion", f"/events/{ids['criterion']}"),
        ("about-scores", "/about/scores"),
        ("ranked-top", "/proposals?sort=top"),
        ("ranked-agreement", "/proposals?sort=agreement"),
        ("ranked-tried", "/proposals?sort=tried"),
        ("ranked-success", "/proposals?sort=success"),
        ("ranked-tag", "/proposals?sort=top&tag=democracy"),
        ("proposal-ratings-history", f"/proposals/{ids['proposal']}?ratings=all"),
        ("communities", "/communities"),
        ("pick-community", "/?community=zzz-no-such-place"),
        ("search", "/search?q=budget"),
        ("search-empty", "/search"),
        ("api", "/api"),
        ("not-found", "/proposals/" + "0" * 64),
    ]


def test_every_page_kind_renders_cleanly(site: Site, browser: Any) -> None:
    shots = screenshot_dir()
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        ctx = browser.new_context(viewport=viewport, device_scale_factor=1 if width_name == "desktop" else 2)
        try:
            for name, path in _pages(site):
                page = ctx.new_page()
                watch = Watch(page)
                resp = page.goto(site.url + path, wait_until="load")
                assert resp is not None
                assert resp.status == (404 if name == "not-found" else 200), (name, resp.status)
                assert page.locator("h1").count() >= 1, name
                if page.locator("#live-status").count():  # live pages say they are live
                    page.wait_for_selector("#live-status:not([hidden])", timeout=timeout(5) * 1000)
                page.wait_for_timeout(150)
                # readable on a phone: nothing wider than the viewport
                overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 1, (name, width_name, overflow)
                page.screenshot(path=str(shots / f"feeds-{name}-{width_name}.png"), full_page=True)
                if name == "home":  # what a visitor sees first
                    page.screenshot(path=str(shots / f"feeds-{name}-{width_name}-first-screen.png"))
                if name != "not-found":
                    assert watch.errors == [], (name, watch.errors)
                assert watch.dialogs == []
                page.close()
        finally:
            ctx.close()


def test_post_published_over_websocket_appears_live(site: Site, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(site.url + "/", wait_until="load")
    page.wait_for_selector("#live-status:not([hidden])", timeout=timeout(5) * 1000)
    before = page.locator("#feed > li").count()

    author = Agent("live-author")
    title = "Lending library for garden tools, opened live"
    env = author.envelope("proposal", proposal_body(title, tags=["garden", "commons"]))
    ws_url = site.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, open_timeout=timeout(5)) as ws:
        sent = time.monotonic()
        ws.send(orjson.dumps(["PUBLISH", env]).decode())
        reply = orjson.loads(ws.recv(timeout=timeout(5)))
        assert reply[0] == "OK" and reply[2] is True, reply
        item = page.locator(f"#e-{event_id(env)}")
        item.wait_for(state="visible", timeout=2000)
        elapsed = time.monotonic() - sent
    assert elapsed < 2.0
    assert page.locator("#feed > li").count() == before + 1
    assert page.locator("#feed > li").first.get_attribute("id") == f"e-{event_id(env)}"
    assert title in item.inner_text()
    page.screenshot(path=str(screenshot_dir() / "feeds-home-live-update.png"))

    # A retraction removes it from the open page too.
    retraction = author.envelope("retraction", {"target": event_id(env), "reason": "test"})
    publish_all(site.url, [retraction])
    item.wait_for(state="detached", timeout=timeout(3) * 1000)
    assert watch.errors == [] and watch.dialogs == []
    ctx.close()


def test_pages_work_without_javascript(site: Site, browser: Any) -> None:
    ctx = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = ctx.new_page()
    page.goto(site.url + "/", wait_until="load")
    assert page.locator("#feed > li").count() > 0
    page.select_option("select[name=kind]", "outcome")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("load")
    assert "kind=outcome" in page.url
    kinds = page.locator("#feed > li").evaluate_all("els => els.map(e => e.className)")
    assert kinds and all("kind-outcome" in k for k in kinds)
    page.click("#feed > li >> nth=0 >> h2 a")
    page.wait_for_load_state("load")
    assert "/outcomes/" in page.url
    page.screenshot(path=str(screenshot_dir() / "feeds-outcome-no-js-phone.png"), full_page=True)
    ctx.close()


# --------------------------------------------------------------------------- hostile content

HOSTILE = [
    "<script>alert('script-tag')</script>",
    "<img src=x onerror=\"alert('onerror')\">",
    "<svg onload=alert('svg')><script>alert(1)</script></svg>",
    "<a href=\"javascript:alert('href')\">click</a>",
    "[md link](javascript:alert('md'))",
    "[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![tracker](https://evil.example/pixel.png)",
    "<iframe src=\"javascript:alert('iframe')\"></iframe>",
    "<style>body{display:none}</style><div style=\"background:url(javascript:alert(1))\">x</div>",
    "\"><script>alert('attr')</script><p title=\"",
    "</textarea></title></script><script>alert('break')</script>",
    "<details open ontoggle=alert('toggle')>",
    "<<b>broken <i>markup</b> <a href='",
    "<base href=\"https://evil.example/\"><form action=\"https://evil.example\"><button>go</button></form>",
    "{{ 7*7 }} {% raw %} ${alert(1)}",
    "\u202eevil\u202c and zero\u200bwidth and \u0000 nul",
]
BAD = " ".join(HOSTILE)


def _hostile_events() -> tuple[dict[str, str], list[dict[str, str]]]:
    villain = Agent("villain<script>")
    town = Agent("hostile-town")
    rater = Agent("hostile-rater")
    envs = [
        villain.envelope("agent", {"name": "<script>alert('name')</script>", "about": BAD[:2000], "owner": "<img src=x onerror=alert(9)>"}),
        town.envelope("community", {"name": "<b onmouseover=alert(2)>Town</b>", "about": BAD[:2000], "place": "<script>alert(3)</script>"}),
        rater.envelope("agent", {"name": "Rater \"><script>alert(4)</script>", "about": "x"}),
    ]
    prop = villain.envelope(
        "proposal",
        proposal_body("<script>alert('title')</script><img src=x onerror=alert(5)>", text=BAD + "\n\n" + "\n".join(HOSTILE), summary=BAD[:1000], tags=["xss", "commons"]),
    )
    pid = event_id(prop)
    out = town.envelope(
        "outcome",
        outcome_body(
            pid,
            summary=BAD[:4000],
            metrics=[{"name": "<script>alert(6)</script>", "unit": "<img src=x onerror=alert(7)>", "baseline": 1, "observed": None, "n": 1, "higher_is_better": True}],
            evidence=["https://example.org/?q=%3Cscript%3Ealert(8)%3C/script%3E", "http://evil.example/'onmouseover='alert(1)'"],
            status="running",
            verdict=None,
        ),
    )
    crit = villain.envelope("criterion", {"title": "<script>alert('crit')</script>", "description": BAD[:2000], "policies": HOSTILE[:10]})
    rating = rater.envelope("rating", rating_body(pid, 0.5, note=BAD[:2000], criteria={event_id(crit): 0.3, "x-y": -0.4}))
    rating_agent = rater.envelope("rating", rating_body(villain.did, -0.8, note="<script>alert('note')</script>"))
    rating_outcome = rater.envelope("rating", rating_body(event_id(out), 0.1, note="<img src=x onerror=alert(10)>"))
    revision = villain.envelope("proposal", proposal_body("Revised <script>alert(11)</script>", text=BAD, revises=pid, tags=["xss"]))
    withdrawn = villain.envelope("proposal", proposal_body("<svg onload=alert(12)>", text=BAD))
    retraction = villain.envelope("retraction", {"target": event_id(withdrawn), "reason": "<script>alert('reason')</script>"})
    return prop, [*envs, prop, crit, out, rating, rating_agent, rating_outcome, revision, withdrawn, retraction]


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    server = ForumProcess(tmp_path_factory.mktemp("feeds-hostile"), **SERVER_SETTINGS).start()
    try:
        _, envs = _hostile_events()
        for env in envs:  # one by one: later events refer to earlier ones
            publish_all(server.url, [env])
        by_kind: dict[str, str] = {}
        for env in envs:
            obj = orjson.loads(env["payload"])
            by_kind.setdefault(obj["kind"], event_id(env))
            by_kind.setdefault("did-" + obj["kind"], obj["author"])
        by_kind["withdrawn"] = event_id(envs[-2])
        by_kind["revision"] = event_id(envs[-3])
        yield server.url, by_kind
    finally:
        server.stop()


def test_hostile_posts_run_no_script(hostile_site: tuple[str, dict[str, str]], browser: Any) -> None:
    url, ids = hostile_site
    paths = [
        "/",
        "/?tag=xss",
        "/?kind=outcome",
        f"/?community={ids['did-community']}",
        f"/proposals/{ids['proposal']}",
        f"/proposals/{ids['revision']}",
        f"/proposals/{ids['withdrawn']}",
        f"/outcomes/{ids['outcome']}",
        f"/communities/{ids['did-community']}",
        f"/agents/{ids['did-proposal']}",
        f"/agents/{ids['did-rating']}",
        f"/events/{ids['rating']}",
        f"/events/{ids['criterion']}",
        f"/events/{ids['retraction']}",
        "/fragments/feed?after=0",
        "/proposals?sort=top",
        "/proposals?sort=top&tag=xss",
        "/communities",
        "/communities?q=town",
        "/search?q=script",
        "/search?q=alert&kind=outcome",
        f"/proposals/{ids['proposal']}?ratings=all",
        "/api",
    ]
    ctx = browser.new_context(viewport=DESKTOP)
    # Anything the page would fetch from elsewhere is recorded and refused.
    foreign: list[str] = []

    def only_this_site(route: Any) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_this_site)
    for path in paths:
        page = ctx.new_page()
        watch = Watch(page)
        page.add_init_script("window.__ran = []; window.alert = window.confirm = window.prompt = (m) => window.__ran.push(String(m));")
        resp = page.goto(url + path, wait_until="load")
        assert resp is not None and resp.status == 200, (path, resp and resp.status)
        page.wait_for_timeout(300)
        page.mouse.move(200, 300)
        page.mouse.move(600, 500)
        ran = page.evaluate("window.__ran")
        assert ran == [], (path, ran)
        assert watch.dialogs == [], (path, watch.dialogs)
        assert watch.errors == [], (path, watch.errors)  # a CSP violation would show here
        scripts = page.evaluate("Array.from(document.scripts).map(s => s.src)")
        assert all(s.startswith(url + "/static/") for s in scripts), (path, scripts)
        assert page.evaluate("document.querySelectorAll('[onerror],[onload],[onclick],[onmouseover],[ontoggle],iframe,object,embed,base,form[action^=http],style').length") == 0, path
        hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
        assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:", "vbscript:"))], (path, hrefs)
        if path in (f"/proposals/{ids['proposal']}", f"/outcomes/{ids['outcome']}", "/"):
            name = path.strip("/").split("/")[0] or "home"
            page.screenshot(path=str(screenshot_dir() / f"feeds-hostile-{name}.png"), full_page=True)
        page.close()
    assert foreign == []
    ctx.close()



# --------------------------------------------------------------------------- ranked, live scores, search


def _api(url: str, path: str) -> Any:
    with httpx2.Client(base_url=url, timeout=timeout(10)) as http:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        return r.json()


def _card_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator("#main li.post").evaluate_all("els => els.map(e => e.id.slice(2))")
    return ids


def test_ranked_order_matches_the_scores_api(site: Site, browser: Any) -> None:
    for viewport in (DESKTOP, PHONE):
        ctx = browser.new_context(viewport=viewport)
        page = ctx.new_page()
        watch = Watch(page)
        for sort, api_sort in (("top", "shrunk_mean"), ("success", "success_rate")):
            page.goto(f"{site.url}/proposals?sort={sort}", wait_until="load")
            shown = _card_ids(page)
            views = _api(site.url, f"/api/v1/scores?kind=proposal&sort={api_sort}&limit=1000")["scores"]
            if sort == "success":  # "What worked" lists only proposals with a successful experiment
                views = [v for v in views if ((v.get("outcomes") or {}).get("by_verdict") or {}).get("success")]
            api = [v["target"] for v in views]
            assert shown, sort
            assert shown == [t for t in api if t in set(shown)], sort  # the page's order is the API's
            listed = [t for t in api if t != site.demo.ids["retracted"] and t in [*site.demo.proposals, site.demo.ids["revision"]]]
            assert shown[0] == listed[0], sort
            assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
        assert watch.errors == [] and watch.dialogs == []
        ctx.close()


def test_card_badge_changes_within_three_seconds(site: Site, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(f"{site.url}/proposals?sort=top", wait_until="load")
    page.wait_for_selector("#live-status:not([hidden])", timeout=timeout(5) * 1000)
    target = _card_ids(page)[0]
    count = _api(site.url, f"/api/v1/scores/{target}")["count"]
    badge = page.locator(f'#e-{target} [data-badges="{target}"]')
    assert f"{count} raters" in badge.inner_text()
    raters = [Agent(f"badge-rater-{i}") for i in range(3)]
    sent = time.monotonic()
    publish_all(site.url, [r.envelope("rating", rating_body(target, -1.0)) for r in raters])
    page.wait_for_function(
        "([sel, text]) => { const el = document.querySelector(sel); return el && el.textContent.includes(text); }",
        arg=[f'#e-{target} [data-badges="{target}"]', f"{count + 3} raters"],
        timeout=3000,
    )
    elapsed = time.monotonic() - sent
    assert elapsed < 3.0, elapsed
    page.screenshot(path=str(screenshot_dir() / "feeds-ranked-live-badge.png"))
    assert watch.errors == [] and watch.dialogs == []
    ctx.close()


def test_event_page_updates_scores_and_outcome_reports(site: Site, browser: Any) -> None:
    target = site.demo.proposals[3]
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(f"{site.url}/proposals/{target}", wait_until="load")
    page.wait_for_selector("#live-status:not([hidden])", timeout=timeout(5) * 1000)
    count = _api(site.url, f"/api/v1/scores/{target}")["count"]
    raters = [Agent(f"page-rater-{i}") for i in range(2)]
    publish_all(site.url, [r.envelope("rating", rating_body(target, 0.9)) for r in raters])
    page.wait_for_function(
        "n => { const dd = document.querySelector('[data-region=scores] .facts dd'); return dd && dd.textContent.trim() === String(n); }",
        arg=count + 2,
        timeout=timeout(3) * 1000,
    )
    town = Agent("live-town")
    report = town.envelope("outcome", outcome_body(target))
    publish_all(site.url, [town.envelope("community", {"name": "Live Town", "about": "Reports live.", "place": "Here"}), report])
    page.locator(f"#o-{event_id(report)}").wait_for(state="visible", timeout=timeout(3) * 1000)
    page.screenshot(path=str(screenshot_dir() / "feeds-proposal-live-update-phone.png"), full_page=True)
    assert watch.errors == [] and watch.dialogs == []
    ctx.close()


def _find_in_search(url: str, browser: Any, word: str, expected: str, shot: str) -> None:
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        ctx = browser.new_context(viewport=viewport)
        page = ctx.new_page()
        watch = Watch(page)
        page.goto(f"{url}/search", wait_until="load")
        page.fill("input[name=q]", word)
        page.click("form.filters button[type=submit]")
        page.wait_for_load_state("load")
        page.locator(f"#e-{expected}").wait_for(state="visible", timeout=timeout(3) * 1000)
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
        page.screenshot(path=str(screenshot_dir() / f"feeds-{shot}-{name}.png"), full_page=True)
        assert watch.errors == [] and watch.dialogs == []
        ctx.close()


def test_search_finds_a_proposal_by_a_word_of_its_text(site: Site, browser: Any) -> None:
    target = site.demo.proposals[5]
    body = orjson.loads(_api(site.url, f"/api/v1/events/{target}")["payload"])["body"]
    word = max((w for w in body["text"].split() if w.isalpha()), key=len)
    _find_in_search(site.url, browser, word, target, "search-sqlite")


@pytest.mark.postgres
def test_search_on_postgresql_in_the_browser(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, browser: Any) -> None:
    server = ForumProcess(tmp_path_factory.mktemp("feeds-pg-search"), database_url=postgres_url, **SERVER_SETTINGS).start()
    try:
        author = Agent("pg-search-author")
        prop = author.envelope("proposal", proposal_body("Seed library", text="Swap heirloom tomatoes at the community greenhouse."))
        publish_all(server.url, [author.envelope("agent", {"name": "Gardener", "about": "Seeds."}), prop])
        _find_in_search(server.url, browser, "greenhouses", event_id(prop), "search-postgres")
    finally:
        server.stop()
