"""Subscription and query filters (pure).

A filter is an object whose fields are ANDed; each list field matches if any
of its entries does (OR). The same filter serves ``SUBSCRIBE`` frames, the
``GET /api/v1/events`` query string and the live matcher.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from forum.protocol import ids
from forum.protocol.errors import invalid
from forum.protocol.events import KINDS, Event

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
MAX_LIST: Final = 1000
LIST_FIELDS: Final = ("kinds", "authors", "ids", "refs", "tags")
INT_FIELDS: Final = ("since", "until", "after_seq", "limit")
FIELDS: Final = LIST_FIELDS + INT_FIELDS
DECIMAL = re.compile(r"[0-9]{1,15}")
"""A non-negative decimal integer as query parameters carry it (ASCII digits only)."""


@dataclass(frozen=True, slots=True)
class Filter:
    kinds: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    refs: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    since: int | None = None
    until: int | None = None
    after_seq: int | None = None
    limit: int | None = None

    @property
    def effective_limit(self) -> int:
        return DEFAULT_LIMIT if self.limit is None else self.limit

    def matches(self, event: Event) -> bool:
        """Whether a live event passes the filter (``after_seq`` and ``limit`` aside)."""
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.authors is not None and event.author not in self.authors:
            return False
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.refs is not None and not any(r in self.refs for r in event.refs):
            return False
        if self.tags is not None and not any(t in self.tags for t in event.tags):
            return False
        if self.since is not None and event.created_at < self.since:
            return False
        return not (self.until is not None and event.created_at > self.until)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in LIST_FIELDS:
            v = getattr(self, name)
            if v is not None:
                out[name] = sorted(v)
        for name in INT_FIELDS:
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


def _check_entry(name: str, value: str) -> None:
    ok = {
        "kinds": lambda s: s in KINDS,
        "authors": lambda s: bool(ids.DID.fullmatch(s)),
        "ids": lambda s: bool(ids.EVENT_ID.fullmatch(s)),
        "refs": lambda s: bool(ids.TARGET.fullmatch(s)),
        "tags": lambda s: bool(ids.SLUG.fullmatch(s)),
    }[name](value)
    if not ok:
        raise invalid(f"filter {name} has a malformed entry {value[:70]!r}")


def parse_filter(obj: Any) -> Filter:
    """Build a Filter from a JSON object; ProtocolError(invalid) on anything unexpected."""
    if not isinstance(obj, dict):
        raise invalid("filter must be an object")
    if unknown := obj.keys() - set(FIELDS):
        raise invalid(f"filter has unknown field {sorted(unknown)[0][:40]!r}")
    kw: dict[str, Any] = {}
    for name in LIST_FIELDS:
        if name not in obj:
            continue
        v = obj[name]
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise invalid(f"filter {name} must be a list of strings")
        if len(v) > MAX_LIST:
            raise invalid(f"filter {name} has more than {MAX_LIST} entries")
        for s in v:
            _check_entry(name, s)
        kw[name] = frozenset(v)
    for name in INT_FIELDS:
        if name not in obj or obj[name] is None:
            continue
        v = obj[name]
        if type(v) is not int or v < 0:
            raise invalid(f"filter {name} must be a non-negative integer")
        kw[name] = v
    if "limit" in kw and not 1 <= kw["limit"] <= MAX_LIMIT:
        raise invalid(f"filter limit must be between 1 and {MAX_LIMIT}")
    return Filter(**kw)


def filter_from_query(params: Mapping[str, list[str]]) -> Filter:
    """The HTTP form: list fields as repeated or comma-separated parameters, ints as decimal."""
    obj: dict[str, Any] = {}
    for name, values in params.items():
        if name in LIST_FIELDS:
            obj[name] = [s for v in values for s in v.split(",") if s]
        elif name in INT_FIELDS:
            if len(values) != 1 or not DECIMAL.fullmatch(values[0]):
                raise invalid(f"query parameter {name} must be one non-negative integer")
            obj[name] = int(values[0])
        else:
            raise invalid(f"unknown query parameter {name[:40]!r}")
    return parse_filter(obj)
