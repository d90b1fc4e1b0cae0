"""A proposal's outcome timeline is paged (feeds.pages.proposals.OUTCOMES_PAGE reports a page,
newest first, "Older reports" for the rest) while its summary still counts every report."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from feeds.pages import proposals
from tests.feeds.conftest import Publish
from tests.feeds.helpers import Agent, outcome_body, proposal_body

REPORT_LINK = re.compile(r'href="/outcomes/([0-9a-f]{64})"')


def test_timeline_pages_its_reports(client: TestClient, publish: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proposals, "OUTCOMES_PAGE", 2)
    p = publish(Agent("tl-alice").envelope("proposal", proposal_body("Tool library")))
    communities = [Agent(f"tl-c{i}") for i in range(3)]
    reports = []
    for i, c in enumerate(communities):
        publish(c.envelope("community", {"name": f"Street {i}", "about": "x"}))
        reports.append(publish(c.envelope("outcome", outcome_body(p))))
    page = client.get(f"/proposals/{p}").text
    shown = list(dict.fromkeys(REPORT_LINK.findall(page)))
    assert shown == [reports[2], reports[1]]  # the newest two
    assert "<strong>3 communities</strong> reported" in page  # the summary counts every report
    older = re.search(r'<a href="([^"]+)">Older reports', page)
    assert older is not None and "The 2 most recent reports are here" in page
    rest = client.get(older.group(1).replace("&amp;", "&")).text
    assert list(dict.fromkeys(REPORT_LINK.findall(rest))) == [reports[0]]
    assert "Older reports" not in rest
