"""Audit a forum: recompute every published score from its signed export.

What ``forum verify URL`` does, as functions:

* :func:`audit` is the core and does no I/O: it takes the export lines
  (``GET /api/v1/export``, NDJSON ``{"seq", "id", "payload", "sig"}``) and the
  served documents (``GET /api/v1/scores:snapshot`` and ``GET /api/v1/groups``)
  and returns a :class:`VerifyReport`.  It

  1. checks every line: valid JSON, seqs strictly increasing, the signature
     (:func:`forum.protocol.events.verify_envelope` with limits wide enough that old or
     large events pass: this checks *who* signed, not the forum's policy) and
     that the id is the SHA-256 of the payload.  Events that fail are counted
     and left out of the replay;
  2. replays the verified events, in seq order, into a :class:`forum.scores.ledger.Ledger`
     up to the served cheap ``as_of_seq`` and recomputes
     :func:`forum.scores.documents.cheap_document`: ``aggregates`` are compared with
     :func:`raters.compare.compare_results` (exact counts, 1e-9 on means), the
     raters, targets, target kinds, criteria, histogram and outcome summaries
     exactly;
  3. replays up to the served ``fit_as_of_seq``, computing the status reference at
     every status checkpoint on the way (:mod:`forum.scores.checkpoints`), and
     recomputes :func:`forum.scores.documents.fitted_document` from a **cold start**
     with that reference; ``status_reference`` is compared exactly, the ``result``
     is compared with ``compare_results`` (``FIT_TOL`` = 0.02 on fitted values,
     one global sign on factors, group labels by adjusted Rand index >= 0.95; see
     :mod:`raters.compare`), the raters and targets exactly;
  (in 2. and 3. the ratings of agents under an arbitration remedy are left out as the
  document states: ``remedies.since_seq`` names the verdict the set holds from,
  recomputed here by :class:`forum.values.state.ValuesState` from the same events,
  so the list of agents is checked, not trusted; docs/arbitration.md 3.5)
  4. checks that the groups document is the one the served fitted document
     implies (same fit, same members in each group, same means and
     representative targets).

* :func:`verify_forum` downloads those documents and streams the export into
  :func:`audit` (stdlib ``urllib`` in a worker thread; the export is never held
  in memory).

The report lists every difference; ``report.ok`` is True when there is none and
no line failed verification.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from clients.audit_values import DOCS as VALUES_DOCS
from clients.audit_values import ValuesAudit
from clients.sdk.errors import InvalidURL
from clients.sdk.urls import http_url
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Limits, verify_envelope
from forum.scores.checkpoints import StatusReference, advance
from forum.scores.documents import cheap_document, fitted_document, groups_document
from forum.scores.ledger import Ledger
from forum.values.state import ValuesState
from raters.compare import FIT_TOL, compare_results

__all__ = [
    "AUDIT_LIMITS",
    "BadLine",
    "Finding",
    "ProgressFn",
    "VerifyReport",
    "audit",
    "http_base",
    "verify_forum",
]

AUDIT_LIMITS = Limits(max_payload_bytes=2**31, max_future_ms=2**62, min_pow_bits=0)
"""Limits used to check exported events: wide enough that any event a forum may have
accepted under its own settings (and at any time) passes; only the signature, the
payload's form and the id matter."""

ProgressFn = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: stages are ``"download"`` (done = last seq read,
total = the forum's head when known), ``"cheap"`` and ``"fitted"`` (0/1 then 1/1)."""

_MAX_LISTED_BAD = 100
_CHEAP_EXACT = ("algorithm", "version", "raters", "targets", "target_kinds", "criteria",
                "histogram_edges", "histogram", "communities", "remedies")  # fmt: skip
_FITTED_EXACT = ("algorithm", "version", "raters", "targets", "remedies", "status_reference")
_PER_TARGET = {
    "count", "mean", "shrunk_mean", "target_intercept", "target_factor", "target_support",
    "target_raters", "status", "consensus", "histogram", "target_kinds", "targets",
}  # fmt: skip
_PER_RATER = {"rater_intercept", "rater_factor", "weight", "agreement", "n_decided", "n_agree",
              "labels", "raters"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One difference between what the forum serves and what the log implies.

    ``section``: ``cheap``, ``fitted``, ``groups`` or ``export``; ``path`` in the
    served document (e.g. ``aggregates.mean[3]``); ``expected`` = recomputed from the
    log, ``actual`` = served; ``tolerance`` exceeded (0 for exact fields);
    ``subject``: the target id or rater did the path's index names, when it names one.
    """

    section: str
    path: str
    expected: Any
    actual: Any
    tolerance: float = 0.0
    subject: str | None = None


@dataclass(frozen=True)
class BadLine:
    """An export line that failed verification: its seq (if readable) and why."""

    seq: int | None
    line: int
    reason: str


@dataclass
class VerifyReport:
    """Result of an audit.  ``ok``: nothing failed and nothing differs."""

    source: str = ""
    events: int = 0
    """Export lines read."""
    verified: int = 0
    """Lines whose signature and id verified (the ones replayed)."""
    last_seq: int = 0
    bad_signatures: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    """The first 100 lines that failed (``bad_signatures`` counts them all)."""
    seq_errors: int = 0
    cheap_as_of_seq: int | None = None
    fit_as_of_seq: int | None = None
    groups_fit_as_of_seq: int | None = None
    checked: list[str] = field(default_factory=list)
    """What was compared: ``cheap``, ``fitted``, ``groups``."""
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What could not be checked (e.g. no scores published yet); not failures."""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings and self.bad_signatures == 0 and self.seq_errors == 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


# --------------------------------------------------------------------------- the core


def _subject(path: str, doc: Mapping[str, Any]) -> str | None:
    """The target id / rater did that the first index of ``path`` designates."""
    head, sep, rest = path.partition("[")
    if not sep:
        return None
    key = head.rsplit(".", 1)[-1]
    idx_text = rest.split("]", 1)[0]
    if not idx_text.isdigit():
        return None
    i = int(idx_text)
    if head == "groups.mean" or head.endswith("groups.mean"):
        # groups.mean[g][t]: the target is the second index
        parts = rest.split("[")
        if len(parts) >= 2 and parts[1].split("]", 1)[0].isdigit():
            i, key = int(parts[1].split("]", 1)[0]), "mean"
        else:
            return None
    names = (
        doc.get("targets")
        if key in _PER_TARGET
        else doc.get("raters")
        if key in _PER_RATER
        else None
    )
    if isinstance(names, list) and 0 <= i < len(names):
        return str(names[i])
    return None


def _exact(section: str, served: Mapping[str, Any], mine: Mapping[str, Any], key: str,
           out: list[Finding]) -> None:  # fmt: skip
    a, e = served.get(key), mine.get(key)
    if a == e:
        return
    if isinstance(a, list) and isinstance(e, list) and len(a) == len(e):
        for i, (x, y) in enumerate(zip(e, a, strict=True)):
            if x != y:
                out.append(
                    Finding(section, f"{key}[{i}]", x, y, 0.0, _subject(f"{key}[{i}]", mine))
                )
        return
    if isinstance(a, dict) and isinstance(e, dict):
        for k in sorted(set(a) | set(e)):
            if a.get(k) != e.get(k):
                out.append(
                    Finding(
                        section,
                        f"{key}.{k}",
                        e.get(k),
                        a.get(k),
                        0.0,
                        k if k in mine.get("targets", ()) else None,
                    )
                )
        return
    if isinstance(a, list) and isinstance(e, list):
        out.append(Finding(section, f"{key}.length", len(e), len(a)))
        return
    out.append(Finding(section, key, e, a))


def _compare(section: str, expected: Any, actual: Any, doc: Mapping[str, Any], prefix: str,
             out: list[Finding]) -> None:  # fmt: skip
    for d in compare_results(expected, actual):
        for sub, e, a in _split(d.path, d.expected, d.actual):
            path = f"{prefix}.{sub}" if sub else prefix
            out.append(Finding(section, path, e, a, d.tolerance, _subject(sub, doc)))


def _split(path: str, e: Any, a: Any) -> Iterator[tuple[str, Any, Any]]:
    """A difference between two equally long lists, one element at a time."""
    if isinstance(e, list) and isinstance(a, list) and len(e) == len(a):
        for i, (x, y) in enumerate(zip(e, a, strict=True)):
            if x != y:
                yield from _split(f"{path}[{i}]", x, y)
    else:
        yield path, e, a


def check_cheap(served: Mapping[str, Any], mine: Mapping[str, Any]) -> list[Finding]:
    """Differences between a served cheap document and the recomputed one."""
    out: list[Finding] = []
    if served.get("as_of_seq") != mine.get("as_of_seq"):
        out.append(Finding("cheap", "as_of_seq", mine.get("as_of_seq"), served.get("as_of_seq")))
    for key in _CHEAP_EXACT:
        _exact("cheap", served, mine, key, out)
    agg_s, agg_m = served.get("aggregates"), mine.get("aggregates")
    if isinstance(agg_s, Mapping) and isinstance(agg_m, Mapping):
        _compare("cheap", agg_m, agg_s, mine, "aggregates", out)
    elif agg_s != agg_m:
        out.append(Finding("cheap", "aggregates", agg_m, agg_s))
    return out


def check_fitted(served: Mapping[str, Any], mine: Mapping[str, Any]) -> list[Finding]:
    """Differences between a served fitted document and the cold-start recomputation."""
    out: list[Finding] = []
    if served.get("fit_as_of_seq") != mine.get("fit_as_of_seq"):
        out.append(
            Finding(
                "fitted", "fit_as_of_seq", mine.get("fit_as_of_seq"), served.get("fit_as_of_seq")
            )
        )
    for key in _FITTED_EXACT:
        _exact("fitted", served, mine, key, out)
    _close("fitted", "outcomes", mine.get("outcomes"), served.get("outcomes"), out)
    res_s, res_m = served.get("result"), mine.get("result")
    if isinstance(res_s, Mapping) and isinstance(res_m, Mapping):
        _compare("fitted", res_m, res_s, mine, "result", out)
    elif res_s != res_m:
        out.append(
            Finding(
                "fitted",
                "result",
                None if res_m is None else "a result",
                None if res_s is None else "a result",
            )
        )
    return out


def _close(section: str, path: str, e: Any, a: Any, out: list[Finding]) -> None:
    """Outcome summaries: floats within FIT_TOL (credibility uses the fit's standing),
    everything else exactly."""
    if isinstance(e, Mapping) and isinstance(a, Mapping):
        for k in sorted(set(e) | set(a), key=str):
            if k not in e or k not in a:
                out.append(Finding(section, f"{path}.{k}", e.get(k), a.get(k)))
            else:
                _close(section, f"{path}.{k}", e[k], a[k], out)
    elif isinstance(e, list) and isinstance(a, list) and len(e) == len(a):
        for i, (x, y) in enumerate(zip(e, a, strict=True)):
            _close(section, f"{path}[{i}]", x, y, out)
    elif isinstance(e, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
        if not abs(e - a) <= FIT_TOL:
            out.append(Finding(section, path, e, a, FIT_TOL))
    elif e != a:
        out.append(Finding(section, path, e, a))


def check_groups(
    served_groups: Mapping[str, Any], served_fitted: Mapping[str, Any] | None
) -> list[Finding]:
    """The groups document must be exactly what the served fitted document implies."""
    out: list[Finding] = []
    implied = _jsonable(groups_document(dict(served_fitted) if served_fitted else None))
    got = _jsonable(served_groups)
    for key in ("fit_as_of_seq", "k"):
        if got.get(key) != implied.get(key):
            out.append(Finding("groups", key, implied.get(key), got.get(key)))
    g_imp = {g.get("id"): g for g in implied.get("groups", [])}
    g_got = {g.get("id"): g for g in got.get("groups", []) if isinstance(g, Mapping)}
    for gid in sorted(set(g_imp) | set(g_got), key=str):
        a, e = g_got.get(gid), g_imp.get(gid)
        if a is None or e is None:
            out.append(Finding("groups", f"groups[{gid}]", e is not None, a is not None))
            continue
        members_e, members_a = set(e.get("members", [])), set(a.get("members", []) or [])
        for did in sorted(members_e - members_a):
            out.append(Finding("groups", f"groups[{gid}].members", "member", "missing", 0.0, did))
        for did in sorted(members_a - members_e):
            out.append(
                Finding("groups", f"groups[{gid}].members", "not a member", "member", 0.0, did)
            )
        for key in sorted((set(e) | set(a)) - {"members", "id"}):
            if e.get(key) != a.get(key):
                out.append(Finding("groups", f"groups[{gid}].{key}", e.get(key), a.get(key)))
    for key in sorted((set(implied) | set(got)) - {"fit_as_of_seq", "k", "groups"}):
        if implied.get(key) != got.get(key):
            out.append(Finding("groups", key, implied.get(key), got.get(key)))
    return out


def _jsonable(doc: Any) -> Any:
    """What the document looks like after a JSON round trip (NaN as null)."""
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def _rows(
    lines: Iterable[bytes | str | Mapping[str, Any]], report: VerifyReport
) -> Iterator[tuple[int, Any]]:
    """(seq, Event) of every export line that verifies; records the ones that do not."""
    prev = 0
    for n, line in enumerate(lines, 1):
        if isinstance(line, (bytes, str)):
            if not line.strip():
                continue
        report.events += 1
        seq: int | None = None
        try:
            row = line if isinstance(line, Mapping) else orjson.loads(line)
            if not isinstance(row, Mapping):
                raise ValueError("a line must be a JSON object")
            seq = row.get("seq")
            if type(seq) is not int:
                raise ValueError("seq must be an integer")
            if seq <= prev:
                report.seq_errors += 1
                _bad(report, seq, n, f"seq {seq} does not follow {prev}")
                continue
            prev = seq
            report.last_seq = seq
            ev = verify_envelope(
                {"payload": row.get("payload"), "sig": row.get("sig")},
                limits=AUDIT_LIMITS,
                now_ms=0,
            )
            if row.get("id") != ev.id:
                raise ValueError(
                    f"id {str(row.get('id'))[:64]!r} is not the SHA-256 of the payload"
                )
        except ProtocolError as e:
            _bad(report, seq, n, e.message)
            continue
        except (ValueError, orjson.JSONDecodeError) as e:
            _bad(report, seq, n, str(e))
            continue
        report.verified += 1
        yield seq, ev


def _bad(report: VerifyReport, seq: int | None, line: int, reason: str) -> None:
    if not reason.startswith("seq "):
        report.bad_signatures += 1
    if len(report.bad_lines) < _MAX_LISTED_BAD:
        report.bad_lines.append(BadLine(seq, line, reason))


def audit(
    lines: Iterable[bytes | str | Mapping[str, Any]],
    snapshot: Mapping[str, Any] | None,
    groups: Mapping[str, Any] | None = None,
    *,
    progress: ProgressFn | None = None,
    total: int | None = None,
    source: str = "",
    values: Mapping[str, Any] | None = None,
) -> VerifyReport:
    """Check the export ``lines`` and the served documents against each other (no I/O).

    ``snapshot``: ``{"cheap": ..., "fitted": ...}`` as served by
    ``/api/v1/scores:snapshot``; ``groups``: the ``/api/v1/groups`` document (None:
    not checked).  ``lines`` may be a lazy stream; it is read once.  ``total``: the
    expected last seq, for progress only.  ``values``: ``{"moral_graph": ..., "cases": ...}``
    as served by ``/api/v1/moral-graph`` and ``/api/v1/cases`` (None: not checked; see
    :mod:`clients.audit_values`).
    """
    report = VerifyReport(source=source)
    values_audit = ValuesAudit(values) if values is not None else None
    # The arbitration (which agents are under a remedy, at every seq) is replayed even when
    # the values documents are not checked: the scores leave those agents' ratings out.
    arbitration = values_audit.state if values_audit is not None else ValuesState()
    cheap_s = (snapshot or {}).get("cheap")
    fitted_s = (snapshot or {}).get("fitted")
    if cheap_s is None:
        report.warnings.append("the forum serves no cheap scores yet: nothing to compare")
    if fitted_s is None:
        report.warnings.append("the forum serves no fitted scores yet: nothing to compare")
    # (as_of_seq, what) in the order the replay reaches them
    todo: list[tuple[int, str]] = []
    if cheap_s is not None:
        report.cheap_as_of_seq = int(cheap_s.get("as_of_seq", -1))
        todo.append((report.cheap_as_of_seq, "cheap"))
    if fitted_s is not None:
        report.fit_as_of_seq = int(fitted_s.get("fit_as_of_seq", -1))
        todo.append((report.fit_as_of_seq, "fitted"))
    todo.sort()
    mine: dict[str, dict[str, Any]] = {}
    stamps = {at for at, _ in todo}
    seen: set[int] = set()  # the stamps that name an exported event
    ledger = Ledger()
    reference = StatusReference()
    t0 = time.perf_counter()
    timings = {"cheap": 0.0, "fitted": 0.0, "checkpoints": 0.0}
    last_fit = max((at for at, what in todo if what == "fitted"), default=0)

    def checkpoint(upto: int) -> None:
        """The ledger stands at ``upto``: advance the status reference to a checkpoint it passed."""
        nonlocal reference
        c = reference.due(min(upto, last_fit))
        if c:
            t = time.perf_counter()
            reference = advance(reference, ledger, c)
            timings["checkpoints"] += time.perf_counter() - t

    def compute(what: str, at: int) -> None:
        if progress:
            progress(what, 0, 1)
        if what == "fitted":
            checkpoint(at)
        snap = ledger.snapshot()
        snap.head = at  # the document's stamp; a seq that names no event is reported below
        served = cheap_s if what == "cheap" else fitted_s
        stated = (served or {}).get("remedies") or {}
        since = stated.get("since_seq", 0) if isinstance(stated.get("since_seq", 0), int) else 0
        if since > at:
            report.findings.append(Finding("export", f"{what}.remedies.since_seq", f"<= {at} (the document's own seq)", since))
            since = at
        # The set in force at the stated seq, and the verdict it holds from (a stated seq
        # that is not such a verdict's is reported by the comparison of ``remedies``).
        rem = arbitration.remedies
        snap.remedied, snap.remedies_since, snap.remedies_as_of_seq = rem.at(since), rem.since(since), since
        if rem.since(at) != snap.remedies_since:
            report.warnings.append(
                f"the {what} scores leave out the agents under a remedy from seq {since}; a verdict "
                f"at seq {rem.since(at)} (before the document's seq {at}) changed that set: not applied in them yet"
            )
        t = time.perf_counter()
        if what == "cheap":
            mine["cheap"] = _jsonable(cheap_document(snap))
        else:
            mine["fitted"] = _jsonable(fitted_document(snap, None, reference)[0])
        timings[what] += time.perf_counter() - t
        if progress:
            progress(what, 1, 1)

    for seq, ev in _rows(lines, report):
        checkpoint(seq - 1)
        while todo and seq > todo[0][0]:
            at, what = todo.pop(0)
            compute(what, at)
        if seq in stamps:
            seen.add(seq)
        ledger.apply(seq, ev)
        if values_audit is not None:
            values_audit.apply(seq, ev)
        else:
            arbitration.apply(seq, ev)
        if progress and (report.verified % 500 == 0):
            progress("download", seq, total)
    if progress:
        progress("download", report.last_seq, total if total is not None else report.last_seq)
    for at, what in todo:
        compute(what, at)
    report.seconds["read_and_replay"] = round(time.perf_counter() - t0 - sum(timings.values()), 3)
    report.seconds.update({k: round(v, 3) for k, v in timings.items()})

    for what, stamp in (("cheap", report.cheap_as_of_seq), ("fitted", report.fit_as_of_seq)):
        if stamp is None:
            continue
        at = stamp
        if at > report.last_seq:
            report.findings.append(
                Finding(
                    "export", f"{what}.as_of_seq", f"<= {report.last_seq} (last exported seq)", at
                )
            )
        elif at > 0 and at not in seen and at <= report.last_seq:
            report.findings.append(
                Finding("export", f"{what}.as_of_seq", "the seq of an exported event", at)
            )
    if cheap_s is not None:
        report.findings += check_cheap(_jsonable(cheap_s), mine["cheap"])
        report.checked.append("cheap")
    if fitted_s is not None:
        report.findings += check_fitted(_jsonable(fitted_s), mine["fitted"])
        report.checked.append("fitted")
    if groups is not None:
        report.groups_fit_as_of_seq = groups.get("fit_as_of_seq")
        report.findings += check_groups(groups, fitted_s)
        report.checked.append("groups")
    if values_audit is not None:
        found, checked = values_audit.finish(report.last_seq)
        report.findings += [Finding(section, path, e, a) for section, path, e, a in found]
        report.checked += checked
        report.warnings += values_audit.warnings
    return report


# --------------------------------------------------------------------------- over HTTP


def http_base(url: str) -> str:
    """The forum's HTTP base from what a user may type (``http://host:port`` or ``ws://host:port/ws``)."""
    try:
        return http_url(url)
    except InvalidURL as e:
        raise ValueError(str(e)) from None


def _get_json(base: str, path: str, timeout: float, attempts: int = 6) -> Any:
    """A JSON document; a 429 (the forum charges reads, docs/api.md) is retried after its Retry-After."""
    req = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return orjson.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code != 429 or attempt == attempts - 1:
                raise
            wait = e.headers.get("Retry-After", "1")
            time.sleep(min(float(wait) if wait.isdigit() else 1.0, 30.0))
    raise AssertionError("unreachable")


def _get_optional(base: str, path: str, timeout: float) -> Any:
    """A document, or None when the forum does not serve it (404)."""
    try:
        return _get_json(base, path, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def _stream_lines(base: str, timeout: float) -> Iterator[bytes]:
    req = urllib.request.Request(
        base + "/api/v1/export", headers={"Accept": "application/x-ndjson"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        yield from resp


def _consistent_documents(
    base: str, timeout: float, attempts: int = 10
) -> tuple[Any, Any, list[str]]:
    """Snapshot and groups documents of the same fit (the fit may advance between reads)."""
    warnings: list[str] = []
    snap, groups = None, None
    for i in range(attempts):
        snap = _get_json(base, "/api/v1/scores:snapshot", timeout)
        groups = _get_json(base, "/api/v1/groups", timeout)
        fitted = snap.get("fitted") if isinstance(snap, dict) else None
        want = fitted.get("fit_as_of_seq") if isinstance(fitted, dict) else 0
        if isinstance(groups, dict) and groups.get("fit_as_of_seq") == want:
            return snap, groups, warnings
        time.sleep(min(0.1 * 2**i, 2.0))
    warnings.append(
        "the groups document kept changing between reads (a refit under way): groups not checked"
    )
    return snap, None, warnings


def _verify_sync(base: str, progress: ProgressFn | None, timeout: float) -> VerifyReport:
    health = _get_json(base, "/healthz", timeout)
    head = health.get("head_seq") if isinstance(health, dict) else None
    snap, groups, warnings = _consistent_documents(base, timeout)
    values = {key: _get_optional(base, path, timeout) for key, _, path in VALUES_DOCS}
    report = audit(
        _stream_lines(base, timeout),
        snap,
        groups,
        progress=progress,
        total=head if isinstance(head, int) else None,
        source=base,
        values=values,
    )
    report.warnings[:0] = warnings
    return report


async def verify_forum(
    base_url: str, *, progress: ProgressFn | None = None, http_timeout: float = 60.0
) -> VerifyReport:
    """Download a forum's export and served scores and :func:`audit` them.

    ``base_url``: the forum's HTTP base (``http://host:port``; a ``ws://.../ws`` URL is
    accepted too).  Documents are read first, then the export, so the export holds
    every event the documents reflect.  ``http_timeout`` bounds each wait for a read.
    Raises ``OSError`` (``urllib.error.URLError``) when the forum cannot be reached,
    ``TimeoutError`` when it stops answering.
    ``progress`` is called from a worker thread.
    """
    base = http_base(base_url)
    return await asyncio.to_thread(_verify_sync, base, progress, http_timeout)
