"""What list pages filter and count by, maintained from the log instead of grouped per request.

At 1,000,000 events, "the proposals with tag *waste*" is a couple of thousand
joined rows and a community directory's "experiments" counts are a grouped
``count(distinct body.proposal)`` over every report of 50 communities: tens of
milliseconds a request. Both only change when the log grows, and both are
small, so :class:`LogIndex` keeps them in memory:

* ``tags``: tag -> ids of the live (not retracted) proposals carrying it;
* ``tried``: community -> the proposals it has live outcome reports on (an
  experiment is a distinct (community, proposal) pair, as
  :func:`feeds.queries.experiments_count` counts them).

:meth:`LogIndex.update` brings it up to the log head each time a page uses it:
three small queries that walk ``ix_events_kind_seq`` past the last folded seq
(new proposals, new outcome reports, new retractions), nothing when the log has
not grown. Each batch of the log is folded whole (events up to the head read
first), and a retraction removes what it retracts, so the index says exactly
what the grouped queries say of the same log prefix (tests compare them).
Readers get immutable sets (frozensets swapped in), so a page in one thread
never sees another thread's half-made update. When an update is already
running (another request), a page uses the index as it stands: at most that
update's events behind, which the next page sees.

The first use folds the whole log once (about a second at 1,000,000 events).
Memory: one entry per live proposal and tag, and per live outcome report.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Integer, bindparam, func, literal_column, select
from sqlalchemy.engine import Connection
from starlette.requests import Request

from forum.schema import OutcomeProposal, events

_LIVE = events.c.retracted.is_(False)
_SINCE = (events.c.seq > bindparam("after", type_=Integer)) & (events.c.seq <= bindparam("head", type_=Integer))


def _kind(kind: str) -> Any:
    return events.c.kind == literal_column(f"'{kind}'")  # a literal, so partial indexes and the planner see it


_HEAD = select(func.max(events.c.seq))
_NEW_PROPOSALS = select(events.c.id, events.c.payload).where(_kind("proposal"), _SINCE, _LIVE).order_by(events.c.seq)
_NEW_REPORTS = (
    select(events.c.id, events.c.author, OutcomeProposal(events.c.payload)).where(_kind("outcome"), _SINCE, _LIVE).order_by(events.c.seq)
)
_NEW_RETRACTIONS = select(events.c.payload).where(_kind("retraction"), _SINCE).order_by(events.c.seq)


@dataclass
class LogIndex:
    seq: int = 0  # every event up to here is folded in
    tags: dict[str, frozenset[str]] = field(default_factory=dict)
    tried: dict[str, frozenset[str]] = field(default_factory=dict)
    _proposal_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _reports: dict[str, tuple[str, str]] = field(default_factory=dict)  # live report id -> (community, proposal)
    _reports_of: dict[tuple[str, str], int] = field(default_factory=dict)  # (community, proposal) -> live reports
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, conn: Connection) -> LogIndex:
        """Fold in the events written since the last update (skipped while another runs)."""
        if not self._lock.acquire(blocking=False):
            return self
        try:
            head = conn.execute(_HEAD).scalar() or 0
            if head > self.seq:
                self._fold(conn, head)
        finally:
            self._lock.release()
        return self

    def _fold(self, conn: Connection, head: int) -> None:
        params = {"after": self.seq, "head": head}
        tags: dict[str, set[str]] = {}
        for pid, payload in conn.execute(_NEW_PROPOSALS, params).all():
            body = orjson.loads(payload).get("body") or {}
            mine = tuple(t for t in body.get("tags") or () if isinstance(t, str))
            self._proposal_tags[pid] = mine
            for t in mine:
                tags.setdefault(t, set()).add(pid)
        tried: dict[str, set[str]] = {}
        for rid, community, proposal in conn.execute(_NEW_REPORTS, params).all():
            if not proposal:
                continue
            self._reports[rid] = (community, proposal)
            pair = (community, proposal)
            self._reports_of[pair] = self._reports_of.get(pair, 0) + 1
            tried.setdefault(community, set()).add(proposal)
        untagged: dict[str, set[str]] = {}
        untried: dict[str, set[str]] = {}
        for (payload,) in conn.execute(_NEW_RETRACTIONS, params).all():
            target = str((orjson.loads(payload).get("body") or {}).get("target") or "")
            for t in self._proposal_tags.pop(target, ()):
                untagged.setdefault(t, set()).add(target)
            gone = self._reports.get(target)
            if gone is not None:
                del self._reports[target]
                left = self._reports_of[gone] - 1
                if left:
                    self._reports_of[gone] = left
                else:
                    del self._reports_of[gone]
                    untried.setdefault(gone[0], set()).add(gone[1])
        _swap(self.tags, tags, untagged)
        _swap(self.tried, tried, untried)
        self.seq = head

    def with_tag(self, tag: str) -> frozenset[str]:
        return self.tags.get(tag, frozenset())

    def tried_by(self, community: str) -> frozenset[str]:
        return self.tried.get(community, frozenset())


def _swap(index: dict[str, frozenset[str]], added: dict[str, set[str]], removed: dict[str, set[str]]) -> None:
    """New frozensets for the keys that changed (a reader holding the old one is unaffected)."""
    for key in added.keys() | removed.keys():
        now = (index.get(key, frozenset()) | added.get(key, set())) - removed.get(key, set())
        if now:
            index[key] = frozenset(now)
        else:
            index.pop(key, None)


def log_index(request: Request) -> LogIndex:
    """The app's index (made on first use, for the app's current store; update it with a connection)."""
    state = request.app.state
    got: tuple[Any, LogIndex] | None = getattr(state, "feeds_log_index", None)
    if got is None or got[0] is not state.store:
        got = (state.store, LogIndex())
        state.feeds_log_index = got
    return got[1]
