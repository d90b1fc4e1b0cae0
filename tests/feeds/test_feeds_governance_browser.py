"""A thread, an amendment and a community's rule set walked in a real browser (Chromium
through Playwright) at desktop and phone widths: no console error, no dialog from the
hostile text in every new field, nothing wider than the screen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest

from tests.feeds.gov_seed import GovWorld, seed_governance
from tests.feeds.test_feeds_browser import DESKTOP, PHONE, SERVER_SETTINGS, Watch
from tests.support.chromium import chromium_args, chromium_path, screenshot_dir
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_sync = pytest.importorskip("playwright.sync_api")


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


@pytest.fixture(scope="module")
def gov_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, GovWorld]]:
    server = ForumProcess(tmp_path_factory.mktemp("gov-browser"), **SERVER_SETTINGS).start()
    try:
        with httpx2.Client(base_url=server.url, timeout=timeout(30)) as http:

            def publish(*envelopes: dict[str, str]) -> str:
                last = ""
                for env in envelopes:
                    r = http.post("/api/v1/events", content=orjson.dumps(env))
                    assert r.status_code in (200, 201), r.text
                    last = r.json()["id"]
                return last

            world = seed_governance(lambda path: http.get(path).json(), publish)
        yield server.url, world
    finally:
        server.stop()


def _check(page: Any, watch: Watch, name: str, width: str) -> None:
    page.wait_for_timeout(150)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, (name, width, overflow)
    page.screenshot(path=str(screenshot_dir() / f"gov-{name}-{width}.png"), full_page=True)
    assert watch.errors == [], (name, width, watch.errors)
    assert watch.dialogs == [], (name, width, watch.dialogs)


def test_walk_a_thread_an_amendment_and_a_rule_set(gov_site: tuple[str, GovWorld], browser: Any) -> None:
    url, w = gov_site
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        ctx = browser.new_context(viewport=viewport)
        page = ctx.new_page()
        watch = Watch(page)
        try:
            page.goto(f"{url}/proposals/{w.proposal}", wait_until="load")
            assert page.locator(f"#r-{w.reply}").is_visible() and page.locator(f"#r-{w.nested}.depth-1").count() == 1
            assert page.locator(".arguments h3").first.is_visible()
            _check(page, watch, "proposal-thread", width)
            # the thread: follow the nested reply to its own page
            page.locator(f"#r-{w.nested} a", has_text="link").click()
            page.wait_for_url(f"**/events/{w.nested}")
            assert "A reply to" in page.locator("h1").inner_text()
            _check(page, watch, "reply", width)
            # the amendment: accepted, with the revision that took it in
            page.goto(f"{url}/proposals/{w.proposal}#amendments", wait_until="load")
            assert page.locator(f"#a-{w.accepted} .amendment-accepted").is_visible()
            page.locator(f"#a-{w.accepted} a", has_text="the full amendment").click()
            page.wait_for_url(f"**/events/{w.accepted}")
            assert page.locator(".amendment-body .prose").is_visible()
            _check(page, watch, "amendment", width)
            # the rule set, from the community's page
            page.goto(f"{url}/communities/{w.village}", wait_until="load")
            page.get_by_role("link", name="Its rule set").click()
            page.wait_for_url(f"**/communities/{w.village}/rules")
            assert page.locator("table.rule-set tbody tr").count() == 1
            assert page.locator("table.like-yours").is_visible()
            _check(page, watch, "rules", width)
            page.goto(f"{url}/proposals/{w.proposal}?community={w.city}", wait_until="load")
            assert page.locator(".like-yours").is_visible()
            _check(page, watch, "proposal-like-this-one", width)
        finally:
            ctx.close()
