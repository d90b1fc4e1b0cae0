"""``forum import-polis``: a Polis conversation as signed events, and through a real forum.

Data: tests/data/polis (CC BY 4.0, see its README); london.youth.policing, the smallest
conversation, has its full export there (comments.csv, votes.csv).  The slow test
imports it into a real forum and checks the forum's opinion groups against the same
computation done directly with :mod:`raters` on the same votes.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from clients.audit import verify_forum
from clients.cli import app
from clients.cli.kit import ExitCode
from clients.importers.polis import (
    MODERATED_OUT_TAG,
    ari_against_polis,
    forum_labels,
    forum_order,
    load_conversation,
    plan_import,
    pure_labels,
    read_map,
    write_map,
)
from raters.compare import LABELS_MIN_ARI
from raters.polis import parse_participants_votes
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

DATA = Path(__file__).resolve().parents[1] / "data" / "polis"
LONDON = DATA / "london.youth.policing"
SEED = "test-import-polis"


@pytest.fixture(scope="module")
def london() -> Any:
    return load_conversation(LONDON)


@pytest.fixture(scope="module")
def london_plan(london: Any) -> Any:
    return plan_import(london, SEED)


def test_latest_votes_equal_participants_votes(london: Any) -> None:
    """votes.csv, latest vote per (comment, voter), is what Polis exported per participant."""
    assert london.votes_source == "votes.csv"
    conv = parse_participants_votes((LONDON / "participants-votes.csv").read_text())
    r = conv.ratings
    expected = {
        (conv.comment_ids[t], str(conv.participant_ids[u]), int(s))
        for u, t, s in zip(r.rater, r.target, r.score, strict=True)
    }
    assert {(v.comment, v.voter, v.vote) for v in london.votes} == expected
    assert london.group_id == {
        str(p): int(g) for p, g in zip(conv.participant_ids, conv.group_id, strict=True) if g >= 0
    }
    assert len(london.comments) == 39  # 3 moderated out, with no votes, absent from the matrix
    assert london.topic and london.url == "https://pol.is/9xxwa9jpkm"


def test_plan(london: Any, london_plan: Any) -> None:
    plan = london_plan
    authors = {c.id: c.author for c in london.comments}
    own = {v.comment: v.vote for v in london.votes if authors[v.comment] == v.voter}
    # every comment a proposal by its author, dated by Polis, except the owner's 15 seeds
    # the owner cast no vote on: the conversation key publishes those (no implicit agreement)
    assert len(plan.proposals) == len(london.comments)
    conversation = {
        p.event.author
        for c, p in zip(london.comments, plan.proposals, strict=True)
        if c.id not in own
    }
    assert len(conversation) == 1 and not conversation & set(plan.dids.values())
    assert sum(1 for c in london.comments if c.id not in own) == 15
    for c, p in zip(london.comments, plan.proposals, strict=True):
        assert p.event.author == (plan.dids[c.author] if c.id in own else min(conversation))
        assert p.event.created_at == c.created_at
        assert p.body["text"] == c.body and 1 <= len(p.body["title"]) <= 200
        assert "polis" in p.body["tags"] and "london-youth-policing" in p.body["tags"]
        assert (MODERATED_OUT_TAG in p.body["tags"]) == (c.moderated == -1)
        assert "CC BY 4.0" in p.body["summary"]
    # one rating per latest vote, except votes on one's own comment
    self_votes = sum(1 for v in london.votes if authors[v.comment] == v.voter)
    assert self_votes == plan.skipped_self_votes == 24
    assert len(plan.ratings) == len(london.votes) - self_votes == 614
    by_id = {p.id: p for p in plan.proposals}
    did_of = plan.dids
    scores = {(v.comment, did_of[v.voter]): (float(v.vote), v.created_at) for v in london.votes}
    comment_of = {e: c for c, e in plan.comment_events.items()}
    for r in plan.ratings:
        assert r.event.author != by_id[r.body["target"]].event.author
        assert scores[(comment_of[r.body["target"]], r.event.author)] == (
            r.body["score"],
            r.event.created_at,
        )
    assert len(set(plan.dids.values())) == len(london.participants) == 27


def test_plan_is_deterministic(london: Any, london_plan: Any) -> None:
    again = plan_import(london, SEED)
    assert [e.envelope for e in again.proposals + again.ratings] == [
        e.envelope for e in london_plan.proposals + london_plan.ratings
    ]
    other = plan_import(london, SEED + "x")
    assert set(other.dids.values()).isdisjoint(london_plan.dids.values())


def test_participants_votes_only(tmp_path: Path) -> None:
    """Without comments.csv and votes.csv: one conversation key signs, every vote counts."""
    for f in ("participants-votes.csv", "summary.csv"):
        shutil.copy(LONDON / f, tmp_path / f)
    conv = load_conversation(tmp_path, "london.youth.policing")
    assert conv.votes_source == "participants-votes.csv"
    plan = plan_import(conv, SEED)
    assert len({p.event.author for p in plan.proposals}) == 1
    assert plan.proposals[0].event.author not in plan.dids.values()
    assert plan.skipped_self_votes == 0 and len(plan.ratings) == 638
    assert {r.event.created_at for r in plan.ratings} == {0}
    # participant keys are the same as with the full export
    full = plan_import(load_conversation(LONDON), SEED)
    assert {p: d for p, d in plan.dids.items() if p in full.dids} == {
        p: full.dids[p] for p in plan.dids if p in full.dids
    }


def test_latest_vote_wins(tmp_path: Path) -> None:
    (tmp_path / "comments.csv").write_text(
        "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
        "1000,x,0,9,0,0,1,First idea\n"
        "1001,x,1,9,0,0,-1,\n"
    )
    (tmp_path / "votes.csv").write_text(
        "timestamp,datetime,comment-id,voter-id,vote\n"
        "1000,x,0,9,1\n"  # the author's own vote: skipped
        "2000,x,0,1,1\n"
        "3000,x,0,1,-1\n"  # changed: latest counts
        "5000,x,1,2,0\n"
        "5000,x,1,2,-1\n"  # same time: the later line counts
        "4000,x,1,1,1\n"
    )
    conv = load_conversation(tmp_path, "t")
    got = {(v.comment, v.voter): (v.vote, v.created_at) for v in conv.votes}
    assert got == {
        ("0", "9"): (1, 1000),
        ("0", "1"): (-1, 3000),
        ("1", "2"): (-1, 5000),
        ("1", "1"): (1, 4000),
    }
    plan = plan_import(conv, SEED)
    assert plan.skipped_self_votes == 1 and len(plan.ratings) == 3
    assert plan.proposals[1].body["title"] == "Polis comment 1"
    assert MODERATED_OUT_TAG in plan.proposals[1].body["tags"]
    with pytest.raises(ValueError):
        (tmp_path / "votes.csv").write_text(
            "timestamp,datetime,comment-id,voter-id,vote\n1,x,0,1,2\n"
        )
        load_conversation(tmp_path)


def test_map_round_trip(tmp_path: Path, london_plan: Any) -> None:
    write_map(london_plan, tmp_path / "map.csv")
    rows = list(csv.reader((tmp_path / "map.csv").read_text().splitlines()))
    assert rows[0] == ["participant", "did"] and len(rows) == 28
    assert read_map(tmp_path / "map.csv") == {d: p for p, d in london_plan.dids.items()}


def test_cli_dry_run(tmp_path: Path, london_plan: Any) -> None:
    (tmp_path / "seed").write_text(SEED + "\n")
    res = CliRunner().invoke(
        app,
        [
            "import-polis",
            str(LONDON),
            "--seed-file",
            str(tmp_path / "seed"),
            "--dry-run",
            "--map",
            str(tmp_path / "m.csv"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert data["dry_run"] is True and "seed" not in data and data["seed_source"] == "file"
    assert SEED not in res.output
    assert (data["proposals"], data["ratings"], data["skipped_self_votes"]) == (39, 614, 24)
    assert read_map(tmp_path / "m.csv") == {d: p for p, d in london_plan.dids.items()}


def test_cli_secret_from_env_or_new_file_never_printed(tmp_path: Path, london_plan: Any) -> None:
    """The derivation secret comes from a file or the environment, never the command line or the output."""
    runner = CliRunner()
    args = ["import-polis", str(LONDON), "--dry-run", "--map", str(tmp_path / "m.csv"), "--json"]
    res = runner.invoke(app, args, env={"MYCELIUM_POLIS_SEED": SEED})
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout.strip().splitlines()[-1])["seed_source"] == "env"
    assert SEED not in res.output
    assert read_map(tmp_path / "m.csv") == {d: p for p, d in london_plan.dids.items()}  # the same keys
    new = tmp_path / "new-seed"
    res = runner.invoke(app, [*args, "--seed-file", str(new)], env={"MYCELIUM_POLIS_SEED": None})
    assert res.exit_code == 0, res.output
    secret = new.read_text().strip()
    assert len(secret) == 64 and secret not in res.output and (new.stat().st_mode & 0o777) == 0o600
    first = read_map(tmp_path / "m.csv")
    assert runner.invoke(app, [*args, "--seed-file", str(new)]).exit_code == 0
    assert read_map(tmp_path / "m.csv") == first  # a rerun with the kept file: the same keys
    assert runner.invoke(app, [*args, "--seed", SEED]).exit_code == ExitCode.USAGE  # no secret on the command line
    (tmp_path / "empty").write_text("")
    assert runner.invoke(app, [*args, "--seed-file", str(tmp_path / "empty")]).exit_code == ExitCode.USAGE


def test_cli_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["import-polis", str(tmp_path / "nope")]).exit_code == ExitCode.USAGE
    assert (
        runner.invoke(app, ["import-polis", str(tmp_path)]).exit_code == ExitCode.USAGE
    )  # no votes
    res = runner.invoke(app, ["import-polis", str(LONDON), "--url", "ftp://x/ws"])
    assert res.exit_code == ExitCode.USAGE


# --------------------------------------------------------------------------- through a real forum


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=timeout(10)) as r:
        return orjson.loads(r.read())


def wait_for_fit(url: str, seconds: float = 90) -> int:
    import time

    deadline = time.monotonic() + timeout(seconds)
    while time.monotonic() < deadline:
        head = _get(url + "/healthz")["head_seq"]
        snap = _get(url + "/api/v1/scores:snapshot")
        if (
            snap["fitted"]
            and snap["fitted"]["fit_as_of_seq"] == head
            and snap["cheap"]["as_of_seq"] == head
        ):
            return int(head)
        time.sleep(0.1)
    raise AssertionError("the fitted scores did not reach the head")


@pytest.mark.slow
def test_import_through_forum_matches_pure_raters(
    tmp_path: Path, london: Any, london_plan: Any
) -> None:
    forum = ForumProcess(
        tmp_path / "forum", author_rate=0, address_rate=0, scores_interval_s=0.3
    ).start()
    try:
        runner = CliRunner()
        args = ["import-polis", str(LONDON), "--url", forum.ws_url, "--json"]
        res = runner.invoke(app, [*args, "--map", str(tmp_path / "map.csv")], env={"MYCELIUM_POLIS_SEED": SEED})
        assert res.exit_code == 0, res.output
        data = orjson.loads(res.stdout.strip().splitlines()[-1])
        assert data["accepted"] == {"proposal": 39, "rating": 614}
        assert data["refused"] == {"proposal": 0, "rating": 0}
        head = wait_for_fit(forum.url)
        assert head == 39 + 614

        # Opinion groups served by the forum, read back as Polis participants.
        groups = _get(forum.url + "/api/v1/groups")
        assert groups["fit_as_of_seq"] == head
        did_to_participant = read_map(tmp_path / "map.csv")
        served = forum_labels(groups, did_to_participant)
        ari_forum, n_forum = ari_against_polis(served, london.group_id)

        # The same computation with raters directly, in the forum's index order: identical.
        raters, comments = forum_order(london_plan, london)
        same_order = pure_labels(london, rater_order=raters, comment_order=comments)
        assert {p: lab for p, lab in same_order.items() if lab >= 0} == served
        # In Polis' order (k-means seeding depends on the order): equal within tolerance.
        polis_order = pure_labels(london)
        ari_pure, n_pure = ari_against_polis(polis_order, london.group_id)
        assert n_forum == n_pure == 24
        assert ari_forum == pytest.approx(ari_pure, abs=0.02)
        both = sorted(served)
        assert (
            adjusted_rand_score([served[p] for p in both], [polis_order[p] for p in both])
            >= LABELS_MIN_ARI
        )

        # Rerunning with the same secret publishes nothing new; the log verifies.
        res = runner.invoke(app, args, env={"MYCELIUM_POLIS_SEED": SEED})
        assert res.exit_code == 0, res.output
        again = orjson.loads(res.stdout.strip().splitlines()[-1])
        assert again["accepted"] == {"proposal": 0, "rating": 0}
        assert again["duplicate"] == {"proposal": 39, "rating": 614}
        assert _get(forum.url + "/healthz")["head_seq"] == head
        report = asyncio.run(verify_forum(forum.url))
        assert report.ok, report.findings
    finally:
        forum.stop()


def test_a_comment_its_author_did_not_agree_with_keeps_the_authors_vote(tmp_path: Path) -> None:
    """Polis records an author's own vote on their comment; the protocol cannot (rating
    one's own event is invalid).  An agreement is what the forum's implicit agreement
    counts anyway, so that comment keeps its author; a pass or a disagreement (a
    conversation owner's seeds) would be lost, so that comment is published by the
    conversation key and the author's vote imported as a rating."""
    (tmp_path / "comments.csv").write_text(
        "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
        "1000,x,0,0,0,0,1,Seeded by the owner\n"
        "1001,x,1,0,0,0,1,Also seeded\n"
        "1002,x,2,5,0,0,1,A participant's idea\n"
        "1003,x,3,0,0,0,1,Seeded, and the owner cast no vote on it\n"
    )
    (tmp_path / "votes.csv").write_text(
        "timestamp,datetime,comment-id,voter-id,vote\n"
        "1000,x,0,0,0\n"  # the owner passes on their seed
        "1001,x,1,0,-1\n"  # and disagrees with this one
        "1002,x,2,5,1\n"  # the participant agrees with their own idea: implicit
        "2000,x,0,5,1\n"
        "2001,x,2,0,-1\n"
        "2002,x,3,5,1\n"
    )
    conv = load_conversation(tmp_path, "t")
    plan = plan_import(conv, SEED)
    # no vote of the owner on comment 3: the conversation key too, so that no agreement
    # Polis never recorded is implied
    conversation = {plan.proposals[i].event.author for i in (0, 1, 3)}
    assert len(conversation) == 1 and not conversation & set(plan.dids.values())
    assert plan.proposals[2].event.author == plan.dids["5"]
    assert "Written by participant 0" in plan.proposals[0].body["summary"]
    assert "Written by" not in plan.proposals[2].body["summary"]
    assert plan.skipped_self_votes == 1  # only the agreement, which implicit agreement restores
    got = {(r.event.author, r.body["target"], r.body["score"]) for r in plan.ratings}
    e = plan.comment_events
    assert got == {
        (plan.dids["0"], e["0"], 0.0),
        (plan.dids["0"], e["1"], -1.0),
        (plan.dids["5"], e["0"], 1.0),
        (plan.dids["0"], e["2"], -1.0),
        (plan.dids["5"], e["3"], 1.0),
    }
