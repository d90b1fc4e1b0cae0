"""Which arguments a proposal page shows: strongest first on each side, never newest first."""

from __future__ import annotations

from raters.arguments import strength, strongest


def test_strength_prefers_bridging_then_the_least_convinced_group_then_the_shrunk_mean() -> None:
    assert strength({"bridging": {"score": 0.3}, "groups": {"means": {"0": 0.9, "1": 0.8}, "votes": {"0": 3, "1": 3}}}) == (0.3, "bridging")
    assert strength({"bridging": None, "groups": {"means": {"0": 0.9, "1": -0.2}, "votes": {"0": 3, "1": 2}}, "shrunk_mean": 0.5}) == (-0.2, "groups")
    assert strength({"bridging": None, "groups": None, "shrunk_mean": 0.1}) == (0.1, "shrunk_mean")
    assert strength(None) == (None, None)


def test_a_late_crowd_of_unrated_replies_does_not_push_strong_arguments_off() -> None:
    replies = [("a" * 64, "support", 1), ("b" * 64, "oppose", 2), ("c" * 64, "support", 3)]
    replies += [(f"{i:064x}", "support", 100 + i) for i in range(50)]  # newest, never rated
    views = {"a" * 64: {"shrunk_mean": 0.6}, "c" * 64: {"shrunk_mean": 0.2}, "b" * 64: {"bridging": {"score": 0.4}}}
    shown = strongest(replies, views)
    assert [a.id for a in shown["support"]][:2] == ["a" * 64, "c" * 64]
    assert [a.id for a in shown["oppose"]] == ["b" * 64]
    assert len(shown["support"]) == 3 and shown["other"] == []
