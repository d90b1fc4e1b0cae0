"""Import a Polis conversation into a forum as signed events (``forum import-polis``).

One conversation folder (the Computational Democracy Project's open-data export:
``comments.csv``, ``votes.csv``, ``participants-votes.csv``, ``summary.csv``) becomes:

* **one key per participant**, :func:`clients.sdk.keys.derive_key` ``(seed,
  "polis/<name>/participant/<id>")`` (``name`` = the folder's name unless given), so
  the same seed always gives the same keys;
* **one proposal per comment**, signed by its author's key, ``created_at`` = the
  comment's Polis timestamp.  Comments Polis moderated out (``moderated`` = -1) are
  imported too, tagged ``polis-moderated-out``: they were voted on before moderation
  and Polis' own export (``participants-votes.csv``) keeps their votes, so leaving
  them out would change the rating matrix.  Title = the comment's first line (at most
  200 characters; "Polis comment N" when empty), text = the whole comment, summary =
  where it comes from and its licence, tags ``polis`` and the conversation's name;
* **one rating per latest vote** per (comment, voter): agree +1, disagree -1, pass 0,
  ``created_at`` = the vote's timestamp (latest = greatest timestamp, the later line
  of ``votes.csv`` on a tie).  Polis records an author's own vote on their comment
  (it casts one automatically), but rating your own event is invalid in the forum:
  an agreement is **skipped and counted** (``skipped_self_votes``; the forum's opinion
  groups count an author's implicit agreement); a comment its author did not agree
  with, or cast no vote on (a conversation owner's seeds), is published by the
  conversation key instead, so the author's vote, if any, is imported and no agreement
  Polis never recorded is implied (:func:`comment_signers`).

Votes come from ``votes.csv`` when the folder has it (every vote with its time);
otherwise from ``participants-votes.csv`` (the latest vote per cell, no time:
``created_at`` = the comment's timestamp, or 0 without ``comments.csv``).  Without
``comments.csv`` the comments' authors are unknown: the proposals are signed by one
conversation key, ``derive_key(seed, "polis/<name>/conversation")``, and no vote is
a self-vote.

Everything is deterministic: rerunning with the same seed signs byte-identical
events, which the forum answers with ``duplicate:``.  Publishing goes through the
SDK like any client (pipelined, proposals first); refusals for ``rate-limited`` are
retried with backoff.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Backoff, Client, PublishResult
from clients.sdk.keys import Key, derive_key

__all__ = [
    "ImportPlan",
    "ImportResult",
    "PolisComment",
    "PolisExport",
    "PolisVote",
    "ari_against_polis",
    "forum_labels",
    "forum_order",
    "load_conversation",
    "participant_label",
    "plan_import",
    "publish_plan",
    "pure_labels",
    "read_map",
    "write_map",
]

VOTE_SCORES: Mapping[int, float] = {1: 1.0, -1: -1.0, 0: 0.0}
MODERATED_OUT_TAG = "polis-moderated-out"
LICENCE = "Polis open data, CC BY 4.0, The Computational Democracy Project"
_PV_META = frozenset(
    {"participant", "xid", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"}
)


@dataclass(frozen=True, slots=True)
class PolisComment:
    id: str
    author: str | None
    """Participant id of the author; None when ``comments.csv`` is absent."""
    created_at: int
    moderated: int
    body: str


@dataclass(frozen=True, slots=True)
class PolisVote:
    comment: str
    voter: str
    vote: int
    created_at: int


@dataclass
class PolisExport:
    """A Polis export folder, read (only the latest vote per (comment, voter)); not
    :class:`raters.polis.PolisConversation`, the vote matrix the algorithms take."""

    name: str
    topic: str | None
    url: str | None
    comments: list[PolisComment]
    votes: list[PolisVote]
    participants: list[str]
    """Every participant id seen (voters, authors, rows of participants-votes.csv), sorted."""
    group_id: dict[str, int]
    """Polis' ``group-id`` per participant (from participants-votes.csv; grouped ones only)."""
    votes_source: str
    """``votes.csv`` or ``participants-votes.csv``."""


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _pid_key(p: str) -> tuple[int, str]:
    return (int(p), p) if p.lstrip("-").isdigit() else (1 << 62, p)


def load_conversation(folder: str | Path, name: str | None = None) -> PolisExport:
    """Read a Polis export folder.  Raises ``ValueError`` when it holds no votes or a
    vote is not -1, 0 or 1, ``OSError`` when a file cannot be read."""
    folder = Path(folder)
    name = name or folder.resolve().name
    comments_text = _read(folder / "comments.csv")
    votes_text = _read(folder / "votes.csv")
    pv_text = _read(folder / "participants-votes.csv")
    summary_text = _read(folder / "summary.csv")
    summary: dict[str, str] = {}
    if summary_text:
        for pair in csv.reader(io.StringIO(summary_text)):
            if len(pair) >= 2:
                summary[pair[0]] = pair[1]

    comments: dict[str, PolisComment] = {}
    if comments_text is not None:
        for row in _rows(comments_text):
            cid = row["comment-id"]
            comments[cid] = PolisComment(
                id=cid,
                author=row["author-id"],
                created_at=int(row["timestamp"]),
                moderated=int(row.get("moderated") or 0),
                body=row.get("comment-body") or "",
            )

    participants: set[str] = {c.author for c in comments.values() if c.author is not None}
    group_id: dict[str, int] = {}
    pv_votes: list[PolisVote] = []
    if pv_text is not None:
        reader = csv.reader(io.StringIO(pv_text))
        header = next(reader)
        pcol, gcol = header.index("participant"), header.index("group-id")
        cols = [(i, h) for i, h in enumerate(header) if h not in _PV_META]
        for cells in reader:
            if not cells:
                continue
            pid = cells[pcol]
            participants.add(pid)
            if cells[gcol] != "":
                group_id[pid] = int(cells[gcol])
            for i, cid in cols:
                cell = cells[i] if i < len(cells) else ""
                if cell != "":
                    when = comments[cid].created_at if cid in comments else 0
                    pv_votes.append(PolisVote(cid, pid, _vote(cell), when))
        if comments_text is None:
            for _, cid in cols:
                comments[cid] = PolisComment(cid, None, 0, 0, "")

    if votes_text is not None:
        latest: dict[tuple[str, str], tuple[tuple[int, int], PolisVote]] = {}
        for line, row in enumerate(_rows(votes_text)):
            v = PolisVote(
                row["comment-id"], row["voter-id"], _vote(row["vote"]), int(row["timestamp"])
            )
            key = (v.comment, v.voter)
            order = (v.created_at, line)
            if key not in latest or order >= latest[key][0]:
                latest[key] = (order, v)
        votes = [v for _, v in latest.values()]
        source = "votes.csv"
    elif pv_text is not None:
        votes, source = pv_votes, "participants-votes.csv"
    else:
        raise ValueError(f"{folder}: neither votes.csv nor participants-votes.csv")
    participants.update(v.voter for v in votes)
    votes.sort(key=lambda v: (v.created_at, _pid_key(v.voter), _pid_key(v.comment)))
    return PolisExport(
        name=name,
        topic=summary.get("topic") or None,
        url=summary.get("url") or None,
        comments=sorted(comments.values(), key=lambda c: _pid_key(c.id)),
        votes=votes,
        participants=sorted(participants, key=_pid_key),
        group_id=group_id,
        votes_source=source,
    )


def _vote(cell: str) -> int:
    v = float(cell)
    if v not in (-1.0, 0.0, 1.0):
        raise ValueError(f"vote {cell!r} is not -1, 0 or 1")
    return int(v)


def participant_label(name: str, participant: str) -> str:
    """The :func:`derive_key` label of a participant's key."""
    return f"polis/{name}/participant/{participant}"


def conversation_label(name: str) -> str:
    """The label of the key that signs comments whose author is unknown."""
    return f"polis/{name}/conversation"


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    return re.sub(r"-{2,}", "-", s).strip("-")[:40].strip("-")


def _title(comment: PolisComment) -> str:
    first = " ".join(comment.body.strip().splitlines()[0].split()) if comment.body.strip() else ""
    if not first:
        return f"Polis comment {comment.id}"
    return first if len(first) <= 200 else first[:199] + "…"


def comment_signers(conv: PolisExport) -> dict[str, str | None]:
    """comment id -> the participant whose key publishes it (None: the conversation key).

    A comment is published by its author, whose own vote on it Polis records (and the
    protocol cannot: rating one's own event is invalid) unless that vote is an
    agreement, which the forum's opinion groups count anyway (an author's implicit
    agreement).  A comment its author did **not** agree with (a conversation owner's
    seeds, passed on; a few disagreements) is published by the conversation key, so that
    the author's actual vote can be imported as a rating; so is a comment its author cast
    no vote on (an owner's seeds in older exports), so that the forum does not count an
    implicit agreement Polis never recorded.  Without an author, the conversation key too.
    """
    own = {v.comment: v.vote for v in conv.votes if v.voter == _authors(conv).get(v.comment)}
    return {
        c.id: c.author if c.author is not None and own.get(c.id) == 1 else None
        for c in conv.comments
    }


def _authors(conv: PolisExport) -> dict[str, str | None]:
    return {c.id: c.author for c in conv.comments}


def _summary(conv: PolisExport, comment: PolisComment, signer: str | None = None) -> str:
    where = (
        f"the Polis conversation {conv.topic[:300]!r}"
        if conv.topic
        else f"the Polis conversation {conv.name[:300]!r}"
    )
    if conv.url:
        where += f" ({conv.url[:200]})"
    by = (
        f" Written by participant {comment.author}, who did not agree with it there; published by"
        " the conversation's key so that their vote on it is kept."
        if comment.author is not None and signer is None
        else ""
    )
    return f"Comment {comment.id} of {where}; imported from {LICENCE}.{by}"


@dataclass
class ImportPlan:
    """Every event an import publishes, signed, and what could not be expressed."""

    name: str
    proposals: list[SignedEvent]
    ratings: list[SignedEvent]
    dids: dict[str, str]
    """participant id -> did:key, every participant of the conversation."""
    comment_events: dict[str, str]
    """comment id -> proposal event id."""
    skipped_self_votes: int = 0
    skipped_unknown_comment: int = 0
    votes_source: str = ""


def plan_import(
    conv: PolisExport,
    seed: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ImportPlan:
    """Sign the events of an import (deterministic for a given ``seed``).

    ``progress(done, total)`` is called while signing (every 1000 events).
    """
    keys: dict[str, Key] = {
        p: derive_key(seed, participant_label(conv.name, p)) for p in conv.participants
    }
    conversation_key: Key | None = None
    base_tags = ["polis"]
    slug = _slug(conv.name)
    if slug and slug != "polis":
        base_tags.append(slug)
    total = len(conv.comments) + len(conv.votes)
    done = 0
    proposals: list[SignedEvent] = []
    comment_events: dict[str, str] = {}
    authors = comment_signers(conv)
    for c in conv.comments:
        if authors[c.id] is not None:
            key = keys[c.author]  # type: ignore[index]
        else:
            conversation_key = conversation_key or derive_key(seed, conversation_label(conv.name))
            key = conversation_key
        tags = base_tags + ([MODERATED_OUT_TAG] if c.moderated == -1 else [])
        ev = builders.proposal(
            key,
            title=_title(c),
            summary=_summary(conv, c, authors[c.id]),
            text=c.body[:32000],
            tags=tags,
            created_at=c.created_at,
        )
        proposals.append(ev)
        comment_events[c.id] = ev.id
        done += 1
        if progress and done % 1000 == 0:
            progress(done, total)
    ratings: list[SignedEvent] = []
    self_votes = unknown = 0
    for v in conv.votes:
        done += 1
        if progress and done % 1000 == 0:
            progress(done, total)
        target = comment_events.get(v.comment)
        if target is None:
            unknown += 1
            continue
        if authors.get(v.comment) == v.voter:
            self_votes += 1
            continue
        ratings.append(
            builders.rating(
                keys[v.voter], target=target, score=VOTE_SCORES[v.vote], created_at=v.created_at
            )
        )
    if progress:
        progress(total, total)
    return ImportPlan(
        name=conv.name,
        proposals=proposals,
        ratings=ratings,
        dids={p: k.did for p, k in keys.items()},
        comment_events=comment_events,
        skipped_self_votes=self_votes,
        skipped_unknown_comment=unknown,
        votes_source=conv.votes_source,
    )


@dataclass
class ImportResult:
    """What the forum answered, per kind: accepted (new), duplicate, refused."""

    accepted: dict[str, int] = field(default_factory=lambda: {"proposal": 0, "rating": 0})
    duplicate: dict[str, int] = field(default_factory=lambda: {"proposal": 0, "rating": 0})
    refused: dict[str, int] = field(default_factory=lambda: {"proposal": 0, "rating": 0})
    refusals: list[tuple[str, str]] = field(default_factory=list)
    """(event id, message) of the first 20 refusals."""
    rate_limited_retries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(self.refused.values())


async def _publish_all(
    client: Client,
    events: list[SignedEvent],
    kind: str,
    result: ImportResult,
    chunk: int,
    on_done: Callable[[int], None],
    max_retries: int,
) -> None:
    backoff = Backoff(initial=0.2, maximum=5.0)
    for start in range(0, len(events), chunk):
        todo = events[start : start + chunk]
        attempt = 0
        while todo:
            answers: list[PublishResult] = await client.publish_many(todo, check=False)
            again = []
            for ev, r in zip(todo, answers, strict=True):
                if r.duplicate:
                    result.duplicate[kind] += 1
                elif r.accepted:
                    result.accepted[kind] += 1
                elif r.reason == "rate-limited" and attempt < max_retries:
                    again.append(ev)
                    continue
                else:
                    result.refused[kind] += 1
                    if len(result.refusals) < 20:
                        result.refusals.append((r.id, r.message))
                on_done(1)
            if again:
                result.rate_limited_retries += len(again)
                await asyncio.sleep(backoff.delay(attempt))
                attempt += 1
            todo = again


async def publish_plan(
    plan: ImportPlan,
    url: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 2000,
    max_retries: int = 30,
    client: Client | None = None,
) -> ImportResult:
    """Publish the plan's proposals, then its ratings, through the forum at ``url`` (ws://).

    Pipelined (the SDK keeps up to 1000 publishes in flight).  Events refused as
    ``rate-limited`` are sent again after a backoff (up to ``max_retries`` rounds per
    chunk); other refusals are counted.  ``progress(done, total)`` after each answer.
    """
    result = ImportResult()
    total = len(plan.proposals) + len(plan.ratings)
    done = [0]

    def on_done(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    t0 = time.perf_counter()
    own = client is None
    c = client or Client(url)
    if own:
        await c.connect()
    try:
        await _publish_all(c, plan.proposals, "proposal", result, chunk, on_done, max_retries)
        await _publish_all(c, plan.ratings, "rating", result, chunk, on_done, max_retries)
    finally:
        if own:
            await c.close()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def write_map(plan: ImportPlan, path: str | Path) -> None:
    """Write ``participant,did`` rows (header first), participants in numeric order."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["participant", "did"])
        for p, did in plan.dids.items():
            w.writerow([p, did])


def read_map(path: str | Path) -> dict[str, str]:
    """did -> participant from a file written by :func:`write_map`."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["did"]: row["participant"] for row in csv.DictReader(f)}


# --------------------------------------------------------------------------- checking groups


def pure_labels(
    conv: PolisExport,
    *,
    expressible_only: bool = True,
    rater_order: Sequence[str] | None = None,
    comment_order: Sequence[str] | None = None,
    implicit_agreement: bool | None = None,
) -> dict[str, int]:
    """Opinion groups computed directly by :func:`raters.groups.opinion_groups` (no forum).

    Raters are the participants and targets the comments, scores the latest votes; with
    ``expressible_only`` the votes on a comment by the participant who publishes it
    (:func:`comment_signers`) are left out, as an import must.
    ``rater_order`` / ``comment_order``: participant and comment ids in index order
    (default: Polis' ids in numeric order).  The groups do not depend on the raters'
    order (docs/raters.md); to repeat a forum's computation exactly, order the
    participants by did:key and the comments by event id, as the forum does.
    ``implicit_agreement`` (default: same as ``expressible_only``): add each author's
    agreement (+1) with their own comment, as the forum's opinion groups do for a
    proposal's author (only for comments someone voted on and authors who voted).
    Returns participant -> group (-1 = not clustered).
    """
    import numpy as np

    from raters.groups import opinion_groups
    from raters.ratings import Ratings

    ri = {p: i for i, p in enumerate(rater_order or conv.participants)}
    ti = {c: i for i, c in enumerate(comment_order or [c.id for c in conv.comments])}
    author = comment_signers(conv) if expressible_only else _authors(conv)
    votes = [
        v
        for v in conv.votes
        if v.comment in ti and not (expressible_only and author.get(v.comment) == v.voter)
    ]
    rr = [ri[v.voter] for v in votes]
    tt = [ti[v.comment] for v in votes]
    ss = [float(VOTE_SCORES[v.vote]) for v in votes]
    if expressible_only if implicit_agreement is None else implicit_agreement:
        voted, voters = {v.comment for v in votes}, {v.voter for v in votes}
        for c in ti:
            a = author.get(c)
            if c in voted and a in voters and a in ri:
                rr.append(ri[a])
                tt.append(ti[c])
                ss.append(1.0)
    ratings = Ratings.build(
        np.array(rr, dtype=np.int64),
        np.array(tt, dtype=np.int64),
        np.array(ss, dtype=np.float64),
        len(ri),
        len(ti),
    )
    labels = opinion_groups(ratings).labels
    return {p: int(labels[i]) for p, i in ri.items()}


def forum_order(plan: ImportPlan, conv: PolisExport) -> tuple[list[str], list[str]]:
    """Participants sorted by did:key and comments sorted by event id: the forum's index order."""
    raters = sorted(conv.participants, key=lambda p: plan.dids[p])
    comments = sorted((c.id for c in conv.comments), key=lambda c: plan.comment_events[c])
    return raters, comments


def forum_labels(
    groups_document: Mapping[str, object], did_to_participant: Mapping[str, str]
) -> dict[str, int]:
    """participant -> group from a forum's ``GET /api/v1/groups`` document (members only)."""
    out: dict[str, int] = {}
    groups = groups_document.get("groups") or []
    assert isinstance(groups, list)
    for g in groups:
        for did in g["members"]:
            if did in did_to_participant:
                out[did_to_participant[did]] = int(g["id"])
    return out


def ari_against_polis(labels: Mapping[str, int], group_id: Mapping[str, int]) -> tuple[float, int]:
    """Adjusted Rand index of ``labels`` against Polis' ``group-id``, over the participants
    both grouped (label >= 0 and a group-id); returns (ARI, number of participants)."""
    from sklearn.metrics import adjusted_rand_score

    both = sorted(p for p, lab in labels.items() if lab >= 0 and p in group_id)
    if len(both) < 2:
        return float("nan"), len(both)
    return float(adjusted_rand_score([group_id[p] for p in both], [labels[p] for p in both])), len(
        both
    )
