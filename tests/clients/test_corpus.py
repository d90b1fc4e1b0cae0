"""Structural checks for the demo content corpus shipped in ``clients/demo/data/corpus.json``."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

SLUG = re.compile(r"^[a-z0-9-]{1,40}$")


def _load() -> dict[str, Any]:
    text = resources.files("clients.demo").joinpath("data").joinpath("corpus.json").read_text("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    return _load()


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _nonempty_str(x: object) -> bool:
    return isinstance(x, str) and x.strip() == x and len(x) > 0


def _unique_slugs(items: list[dict[str, Any]]) -> set[str]:
    slugs = [item["slug"] for item in items]
    for slug in slugs:
        assert isinstance(slug, str) and SLUG.match(slug), slug
    assert len(set(slugs)) == len(slugs), "duplicate slugs"
    return set(slugs)


def _utilities(corpus: dict[str, Any], proposal: dict[str, Any]) -> list[float]:
    out = []
    for camp in corpus["camps"]:
        weights = camp["weights"]
        total = sum(weights.values())
        score = sum(w * proposal["values"].get(slug, 0.0) for slug, w in weights.items())
        out.append(score / total)
    return out


def test_top_level(corpus: dict[str, Any]) -> None:
    assert set(corpus) == {
        "about",
        "criteria",
        "camps",
        "community_types",
        "communities",
        "proposals",
    }
    assert _nonempty_str(corpus["about"])
    assert "fictional" in corpus["about"].lower()


def test_criteria(corpus: dict[str, Any]) -> None:
    criteria = corpus["criteria"]
    assert 8 <= len(criteria) <= 10
    _unique_slugs(criteria)
    for c in criteria:
        assert set(c) == {"slug", "title", "description", "policies"}
        assert _nonempty_str(c["title"]) and _nonempty_str(c["description"])
        assert 2 <= len(c["policies"]) <= 5
        for line in c["policies"]:
            assert _nonempty_str(line) and len(line) <= 140, line


def test_camps(corpus: dict[str, Any]) -> None:
    criteria = {c["slug"] for c in corpus["criteria"]}
    camps = corpus["camps"]
    assert 3 <= len(camps) <= 4
    _unique_slugs(camps)
    for camp in camps:
        assert set(camp) == {"slug", "name", "description", "weights"}
        assert _nonempty_str(camp["name"]) and _nonempty_str(camp["description"])
        weights = camp["weights"]
        assert weights and set(weights) <= criteria
        for w in weights.values():
            assert _is_number(w) and 0.0 <= w <= 1.0
        assert sum(weights.values()) > 0
    # Camps must actually differ: each has a different top-weighted criterion.
    tops = [max(camp["weights"], key=camp["weights"].get) for camp in camps]
    assert len(set(tops)) == len(tops)


def test_community_types_and_communities(corpus: dict[str, Any]) -> None:
    types = corpus["community_types"]
    assert 4 <= len(types) <= 6
    type_slugs = _unique_slugs(types)
    for t in types:
        assert set(t) == {"slug", "name", "description"}
        assert _nonempty_str(t["name"]) and _nonempty_str(t["description"])

    communities = corpus["communities"]
    assert len(communities) == 12
    _unique_slugs(communities)
    for c in communities:
        assert set(c) == {"slug", "name", "about", "place", "type"}
        for key in ("name", "about", "place"):
            assert _nonempty_str(c[key]), (c["slug"], key)
        assert len(c["about"]) <= 300
        assert c["type"] in type_slugs
    assert {c["type"] for c in communities} == type_slugs


def test_proposals(corpus: dict[str, Any]) -> None:
    criteria = {c["slug"] for c in corpus["criteria"]}
    types = {t["slug"] for t in corpus["community_types"]}
    proposals = corpus["proposals"]
    assert len(proposals) >= 36
    _unique_slugs(proposals)
    titles = [p["title"] for p in proposals]
    assert len(set(titles)) == len(titles)
    expected_keys = {
        "slug",
        "title",
        "summary",
        "text",
        "tags",
        "criteria",
        "values",
        "metrics",
        "true_effect",
        "rationale_hidden",
    }
    for p in proposals:
        slug = p["slug"]
        assert set(p) == expected_keys, slug
        assert _nonempty_str(p["title"]) and len(p["title"]) <= 120, slug
        assert _nonempty_str(p["summary"]) and len(p["summary"]) <= 280, slug
        words = len(p["text"].split())
        assert 120 <= words <= 300, (slug, words)
        assert "## " in p["text"] and "\n- " in p["text"], slug
        assert 2 <= len(p["tags"]) <= 4 and len(set(p["tags"])) == len(p["tags"]), slug
        assert all(SLUG.match(tag) for tag in p["tags"]), slug
        assert 2 <= len(p["criteria"]) <= 4 and set(p["criteria"]) <= criteria, slug
        assert p["values"] and set(p["values"]) <= criteria, slug
        for v in p["values"].values():
            assert _is_number(v) and -1.0 <= v <= 1.0, slug
        # A proposal claims to serve its criteria, so it must score positively on them.
        for crit in p["criteria"]:
            assert p["values"].get(crit, 0) > 0, (slug, crit)
        assert 1 <= len(p["metrics"]) <= 3, slug
        for m in p["metrics"]:
            assert set(m) == {"name", "unit", "baseline", "higher_is_better"}, slug
            assert _nonempty_str(m["name"]) and _nonempty_str(m["unit"]), slug
            assert _is_number(m["baseline"]) and m["baseline"] > 0, slug
            assert isinstance(m["higher_is_better"], bool), slug
        assert set(p["true_effect"]) == types, slug
        for eff in p["true_effect"].values():
            assert _is_number(eff) and -1.0 <= eff <= 1.0, slug
        assert _nonempty_str(p["rationale_hidden"]), slug


def test_every_criterion_is_served(corpus: dict[str, Any]) -> None:
    used = set()
    for p in corpus["proposals"]:
        used |= set(p["criteria"])
    assert used == {c["slug"] for c in corpus["criteria"]}


def test_hidden_truths_are_varied(corpus: dict[str, Any]) -> None:
    proposals = corpus["proposals"]
    works_everywhere = [p for p in proposals if min(p["true_effect"].values()) > 0.05]
    backfires = [p for p in proposals if min(p["true_effect"].values()) < 0]
    never_works = [p for p in proposals if max(p["true_effect"].values()) <= 0.05]
    context_dependent = [
        p
        for p in proposals
        if max(p["true_effect"].values()) - min(p["true_effect"].values()) >= 0.2
    ]
    assert len(works_everywhere) >= 3
    assert len(backfires) >= 5
    assert len(never_works) >= 3
    assert len(context_dependent) >= 10


def test_bridging_and_divisive_by_construction(corpus: dict[str, Any]) -> None:
    bridging = []
    divisive = []
    for p in corpus["proposals"]:
        us = _utilities(corpus, p)
        if min(us) > 0.15:
            bridging.append(p["slug"])
        if min(us) < 0 < max(us) and max(us) - min(us) > 0.5:
            divisive.append(p["slug"])
    assert len(bridging) >= 5, bridging
    assert len(divisive) >= 5, divisive
    # Some proposals should be weak overall: no camp is enthusiastic.
    weak = [p for p in corpus["proposals"] if max(_utilities(corpus, p)) < 0.15]
    assert len(weak) >= 2
