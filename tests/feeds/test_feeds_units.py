"""Unit tests: Markdown sanitizing, XML-safe text, charts, score normalization, live listener."""

from __future__ import annotations

import asyncio

import pytest

from feeds import charts
from feeds.live import LiveListener, matcher
from feeds.render import ALLOWED_TAGS, markdown_html, metric_change, plain_text, xml_safe
from feeds.scorecards import Bridging, Scores, from_engine, settle, summarize_reports
from forum.protocol.events import Event
from forum.store import Stored
from tests.feeds.test_feeds_pages import Page


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "![x](data:image/png;base64,AAAA)",
        "![x](https://tracker.example/p.png)",
        "<a href='javascript:alert(1)'>x</a>",
        "<iframe src=//evil.example></iframe>",
        "<svg><script>alert(1)</script></svg>",
        "[x](vbscript:msgbox)",
        '<div style="background:url(javascript:alert(1))">x</div>',
        "<<b>broken <i>markup</b> <a href='",
        "`<script>` in code and\n\n```\n<script>alert(1)</script>\n```",
    ],
)
def test_markdown_never_yields_active_content(source: str) -> None:
    html = str(markdown_html(source))
    page = Page(html)
    for tag, attrs in page.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= {"href", "title", "rel", "start", "align"}, attrs
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("http://", "https://", "mailto:", "/")), href
    assert "<script" not in html.lower() and "<img" not in html.lower()


def test_markdown_keeps_ordinary_formatting() -> None:
    html = str(markdown_html("# Title\n\nSome **bold**, a [link](https://example.org \"t\") and\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n"))
    assert "<h2>Title</h2>" in html  # shifted below the page's own <h1>
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.org" title="t" rel="nofollow ugc noopener noreferrer">link</a>' in html
    assert "<ul>" in html and "<table>" in html


def test_plain_text_excerpts_strip_markup() -> None:
    assert plain_text("We would **repeat** it.\n\n<script>x</script> [a](https://e.org)") == "We would repeat it. <script>x</script> a"


def test_xml_safe_removes_what_xml_cannot_hold() -> None:
    assert xml_safe("a\x00b\x01c\x0bd\x1fe\ufffef\ud800g\tok\n") == "abcdefg\tok\n"
    assert xml_safe("émoji 🍄 fine") == "émoji 🍄 fine"


def test_metric_change() -> None:
    assert metric_change({"baseline": 10, "observed": 25, "higher_is_better": True}) == ("+150%", "good")
    assert metric_change({"baseline": 9, "observed": 4.5, "higher_is_better": False}) == ("-50%", "good")
    assert metric_change({"baseline": 9, "observed": 12, "higher_is_better": False}) == ("+33%", "bad")
    assert metric_change({"baseline": 0, "observed": 3, "higher_is_better": True}) == ("+3 from 0", "good")
    assert metric_change({"baseline": 5, "observed": None, "higher_is_better": True})[1] == "none"
    assert metric_change({"baseline": 5, "observed": 5, "higher_is_better": True}) == ("no change", "none")


def test_charts_are_numbers_only_svg() -> None:
    for svg in (
        charts.score_bar(0.5),
        charts.score_bar(-2.0),
        charts.score_bar(None),
        charts.histogram([0, 3, 9, 1, 0]),
        charts.metric_bars(10, 25, True),
        charts.metric_bars(-3, None, False),
        charts.share_bar(2, 3),
    ):
        s = str(svg)
        assert s.startswith("<svg ") and s.endswith("</svg>")
        assert "style=" not in s and "<script" not in s and "href" not in s
    assert charts.histogram([]) == ""
    bar = str(charts.score_bar(-2.0, width=100))
    assert 'width="50"' in bar  # clamped to -1: half the width


def test_engine_documents_are_normalized() -> None:
    s = from_engine(
        {
            "count": 7,
            "mean": float("nan"),
            "shrunk_mean": "x",
            "criteria": {"a": {"count": 3, "mean": 0.5}, "b": None},
            "bridging": {"status": "weird", "score": 0.4},
            "groups": {"means": {"0": 0.1, "1": None}, "votes": {"0": 4}, "consensus": 0.5},
            "histogram": [1, 2, "x"],
            "outcomes": None,
        }
    )
    assert s.count == 7 and s.mean is None and s.shrunk_mean is None
    assert [c.key for c in s.criteria] == ["a"]
    assert s.bridging.status == "pending" and s.bridging.score == 0.4
    assert [(g.name, g.mean, g.votes) for g in s.groups] == [("A", 0.1, 4), ("B", None, None)]
    assert s.consensus == 0.5 and s.histogram == (1, 2, 0)
    assert s.communities == 0 and s.computed


def test_few_raters_means_insufficient() -> None:
    assert settle(Scores(count=3)).bridging.status == "insufficient"
    assert settle(Scores(count=5)).bridging.status == "pending"
    assert settle(Scores(count=2, bridging=Bridging("divisive"))).bridging.status == "divisive"


def _stored(seq: int, kind: str, body: dict[str, object], author: str = "did:key:zA", tags: tuple[str, ...] = ()) -> Stored:
    ev = Event(id=f"{seq:064x}", kind=kind, author=author, created_at=0, body=body, payload="", sig="", tags=tags)
    return Stored(seq=seq, event=ev)


def test_outcome_summary_from_reports_follows_the_raters_rules() -> None:
    reports = [
        _stored(1, "outcome", {"status": "running", "verdict": None}, author="did:key:zA"),
        _stored(2, "outcome", {"status": "completed", "verdict": "success"}, author="did:key:zA"),  # replaces seq 1
        _stored(3, "outcome", {"status": "completed", "verdict": "failure"}, author="did:key:zB"),
        _stored(4, "outcome", {"status": "planned", "verdict": None}, author="did:key:zC"),
    ]
    s = summarize_reports(reports)
    assert s.communities == 3
    assert dict(s.by_status) == {"completed": 2, "planned": 1}
    assert dict(s.by_verdict) == {"success": 1, "failure": 1}
    assert s.success_rate == pytest.approx((1 + 1) / (2 + 2))


async def test_live_listener_coalesces_and_never_queues() -> None:
    listener = LiveListener(matcher(("proposal",), "commons", None), after=10)
    batch = [
        _stored(11, "rating", {"target": "x"}),
        _stored(12, "proposal", {}, tags=("other",)),
        _stored(13, "proposal", {}, tags=("commons",)),
    ]
    listener.put_nowait(batch)
    listener.put_nowait([_stored(9, "proposal", {}, tags=("commons",))])  # older than the cursor
    assert listener.qsize() == 0  # nothing is ever queued
    assert listener.latest == 13 and listener.wake.is_set()
    listener.wake.clear()
    listener.put_nowait([_stored(14, "rating", {"target": "y"})])
    assert not listener.wake.is_set()
    listener.put_nowait([_stored(15, "retraction", {"target": "a" * 64})])
    assert listener.wake.is_set() and list(listener.retracted) == ["a" * 64]
    for i in range(1000):
        listener.put_nowait([_stored(100 + i, "proposal", {}, tags=("commons",))])
    assert listener.latest == 1099 and listener.qsize() == 0
    await asyncio.sleep(0)


def test_live_matcher() -> None:
    m = matcher(("proposal", "outcome"), None, "did:key:zB")
    assert m(_stored(1, "outcome", {}, author="did:key:zB").event)
    assert not m(_stored(1, "outcome", {}, author="did:key:zA").event)
    assert not m(_stored(1, "rating", {}, author="did:key:zB").event)


def test_every_route_is_documented() -> None:
    from pathlib import Path

    from feeds.routes import routes

    doc = (Path(__file__).resolve().parents[2] / "docs" / "feeds.md").read_text("utf-8")
    for r in routes():
        path = r.path  # type: ignore[attr-defined]
        shown = path.replace("{name}.{fmt}", "all.atom").replace(".{fmt}", ".atom")
        assert f"`{shown}" in doc or f"`{path}" in doc, f"{path} is not in docs/feeds.md"
