"""Events: the envelope, the payload schema of every kind, and verification.

Everything here is a plain function over bytes and dicts, with no I/O, so the
server's thread pool, the SDK and the property tests all run the same code.

Verification happens in two stages:

1. :func:`verify_envelope` (stateless, CPU-bound, safe to run in threads):
   envelope shape, payload size, strict JSON, top-level keys, the body schema
   of the kind, clock skew, proof of work, then the Ed25519 signature.
2. :func:`check_context` (needs what the log already holds): rules that refer
   to other events, such as "an outcome's author must have a community
   profile" or "you may only retract your own events".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from forum.protocol import strictjson
from forum.protocol.errors import ProtocolError, invalid
from forum.protocol.identity import is_did, public_key_from_did, verify
from forum.protocol.ids import CRITERION_REF_RE, DID_RE, EVENT_ID_RE, SLUG_RE, TARGET_RE

PROTOCOL_VERSION: Final = 1
CORE_KINDS: Final = ("agent", "community", "criterion", "proposal", "outcome", "rating", "retraction")
# --- governance kinds (issue 13): arguments, amendments, local adoptions
GOVERNANCE_KINDS: Final = ("reply", "amendment", "adoption")
# --- values and arbitration kinds (issue 14, docs/arbitration.md)
ARBITRATION_KINDS: Final = ("wiser", "flag", "assessment", "commitment", "reveal", "appeal")
KINDS: Final = CORE_KINDS + GOVERNANCE_KINDS + ARBITRATION_KINDS
TOP_LEVEL_KEYS: Final = frozenset({"v", "kind", "author", "created_at", "body", "nonce"})
REQUIRED_TOP_LEVEL: Final = frozenset({"v", "kind", "author", "created_at", "body"})


# --------------------------------------------------------------------------- bodies

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE)]
EventId = Annotated[str, StringConstraints(pattern=EVENT_ID_RE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Line = Annotated[str, StringConstraints(max_length=280)]
Text = Annotated[str, StringConstraints(max_length=2000)]
LongText = Annotated[str, StringConstraints(max_length=32000)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s<>\"]+$", max_length=500)]
Score = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
CriterionRef = Annotated[str, StringConstraints(pattern=CRITERION_REF_RE)]
Did = Annotated[str, StringConstraints(pattern=DID_RE)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AgentBody(_Body):
    name: Name
    about: Text
    owner: Name | None = None


# --- governance: community attributes (documented vocabulary, ``x-`` escape hatch)
COMMUNITY_TYPES: Final = (
    "neighbourhood-council",
    "housing-cooperative",
    "school-board",
    "village",
    "city",
    "workplace",
    "association",
    "online-group",
)
REGION_RE: Final = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"


class CommunityBody(_Body):
    name: Name
    about: Text
    place: Annotated[str, StringConstraints(max_length=200)] | None = None
    type: Slug | None = None
    size: Annotated[int, Field(ge=1, le=10**9)] | None = None
    region: Annotated[str, StringConstraints(pattern=REGION_RE)] | None = None
    tags: Annotated[list[Slug], Field(max_length=10)] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str | None) -> str | None:
        if v is not None and v not in COMMUNITY_TYPES and not v.startswith("x-"):
            raise ValueError(f"must be one of {', '.join(COMMUNITY_TYPES)} or start with 'x-'")
        return v

    @field_validator("tags")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("entries must be unique")
        return v


class CriterionBody(_Body):
    title: Title
    description: Text
    policies: Annotated[list[Line], Field(max_length=10)]


class ProposalBody(_Body):
    title: Title
    summary: Annotated[str, StringConstraints(max_length=1000)]
    text: LongText
    tags: Annotated[list[Slug], Field(max_length=10)]
    criteria: Annotated[list[CriterionRef], Field(max_length=20)] | None = None
    revises: EventId | None = None
    # --- governance: a revision takes in amendments; a fork cites its origin
    accepts: Annotated[list[EventId], Field(min_length=1, max_length=20)] | None = None
    forks: EventId | None = None

    @field_validator("tags", "criteria", "accepts")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("entries must be unique")
        return v


class Period(_Body):
    start: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    end: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None

    @field_validator("start", "end")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            date.fromisoformat(v)
        return v


METRIC_MAX_ABS = 1e15
"""Largest magnitude of a metric's baseline or observed value: beyond any real measure a
community reports (1e15 is a million billion), small enough that no float overflows."""


class Metric(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    unit: Annotated[str, StringConstraints(max_length=40)]
    baseline: Annotated[float, Field(allow_inf_nan=False, ge=-METRIC_MAX_ABS, le=METRIC_MAX_ABS)]
    observed: Annotated[float, Field(allow_inf_nan=False, ge=-METRIC_MAX_ABS, le=METRIC_MAX_ABS)] | None
    n: Annotated[int, Field(ge=0, le=10**9)]
    higher_is_better: bool


OutcomeStatus = Literal["planned", "running", "completed", "abandoned"]
Verdict = Literal["success", "failure", "mixed", "inconclusive"]
Milestone = Literal["planned", "started", "first-results", "completed"]


class OutcomeBody(_Body):
    proposal: EventId
    status: OutcomeStatus
    verdict: Verdict | None
    period: Period
    metrics: Annotated[list[Metric], Field(max_length=20)]
    summary: Annotated[str, StringConstraints(max_length=4000)]
    evidence: Annotated[list[Url], Field(max_length=20)]
    # --- governance: the adoption measured and the experiment's progress
    adoption: EventId | None = None
    milestone: Milestone | None = None


class RatingBody(_Body):
    target: Annotated[str, StringConstraints(pattern=TARGET_RE)]
    score: Score
    criteria: Annotated[dict[CriterionRef, Score], Field(max_length=20)]
    confidence: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    note: Text | None = None


class RetractionBody(_Body):
    target: EventId
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


# --------------------------------------------------------------------------- governance kinds

Stance = Literal["support", "oppose", "question", "evidence", "neutral"]
ParamKey = Annotated[str, StringConstraints(pattern=SLUG_RE)]
ParamValue = Annotated[str, StringConstraints(max_length=200)]


class ReplyBody(_Body):
    target: EventId
    stance: Stance
    text: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    quote: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    criteria: Annotated[list[CriterionRef], Field(max_length=20)] | None = None

    @field_validator("criteria")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("entries must be unique")
        return v


class AmendmentBody(_Body):
    proposal: EventId
    title: Title | None = None
    text: LongText | None = None
    diff: Annotated[str, StringConstraints(min_length=1, max_length=32000)] | None = None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


AdoptionAction = Literal["adopt", "drop"]


class AdoptionBody(_Body):
    proposal: EventId
    action: AdoptionAction
    start: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    params: Annotated[dict[ParamKey, ParamValue], Field(max_length=20)] | None = None
    note: Text | None = None

    @field_validator("start")
    @classmethod
    def _date(cls, v: str) -> str:
        date.fromisoformat(v)
        return v


# ---- values and arbitration (docs/arbitration.md; protocol.md sections 6.9-6.14)

Judgement = Literal["wiser", "not_wiser", "unsure"]
RIGHTS: Final = ("property", "reputation", "livelihood", "bodily-integrity", "due-process", "other")
Right = Literal["property", "reputation", "livelihood", "bodily-integrity", "due-process", "other"]
Layer = Literal["benign", "negotiation", "rights"]
Vote = Literal["uphold", "dismiss"]
Target = Annotated[str, StringConstraints(pattern=TARGET_RE)]
Salt = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
UNRETRACTABLE: Final = frozenset({"assessment", "commitment", "reveal", "appeal"})
"""Kinds that bind their author once published: a retraction of one is refused."""


def _unique_list(v: list[str] | None) -> list[str] | None:
    if v is not None and len(set(v)) != len(v):
        raise ValueError("entries must be unique")
    return v


class WiserBody(_Body):
    """In ``context``, is values card ``b`` wiser than card ``a``?"""

    context: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    tags: Annotated[list[Slug], Field(max_length=10)]
    a: EventId
    b: EventId
    judgement: Judgement
    story: Text

    _tags = field_validator("tags")(_unique_list)


class FlagBody(_Body):
    """A claim that ``target`` (an event or an agent's conduct) violates someone's equal rights."""

    target: Target
    right: Right
    description: Text | None = None
    harm: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    evidence: Annotated[list[EventId], Field(max_length=20)]
    links: Annotated[list[Url], Field(max_length=20)]

    _evidence = field_validator("evidence", "links")(_unique_list)


class AssessmentBody(_Body):
    """Which layer of conflict a flag is in, in the author's judgement."""

    flag: EventId
    layer: Layer
    reason: Text


class CommitmentBody(_Body):
    """A juror's sealed vote: ``hash`` = :func:`vote_hash` of the vote it will reveal."""

    case: EventId
    round: Annotated[int, Field(ge=0, le=1)]
    hash: EventId


class RevealBody(_Body):
    """Opens a commitment: the vote, the reason and the salt that were hashed."""

    commitment: EventId
    vote: Vote
    reason: Text
    salt: Salt


class AppealBody(_Body):
    """A party asks for a larger jury."""

    case: EventId
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def vote_hash(author: str, case: str, round: int, vote: str, salt: str, reason: str) -> str:
    """The commitment hash of a vote (protocol.md 6.12): binds the juror, the case and the round."""
    text = f"mycelium/vote/v1\n{author}\n{case}\n{round}\n{vote}\n{salt}\n{reason}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


BODY_MODELS: Final[Mapping[str, type[_Body]]] = {
    "agent": AgentBody,
    "community": CommunityBody,
    "criterion": CriterionBody,
    "proposal": ProposalBody,
    "outcome": OutcomeBody,
    "rating": RatingBody,
    "retraction": RetractionBody,
    "reply": ReplyBody,
    "amendment": AmendmentBody,
    "adoption": AdoptionBody,
    "wiser": WiserBody,
    "flag": FlagBody,
    "assessment": AssessmentBody,
    "commitment": CommitmentBody,
    "reveal": RevealBody,
    "appeal": AppealBody,
}


# --------------------------------------------------------------------------- the event


@dataclass(frozen=True, slots=True)
class Event:
    """A verified event. ``payload`` is the exact text that was signed."""

    id: str
    kind: str
    author: str
    created_at: int
    body: dict[str, Any]
    payload: str
    sig: str
    nonce: str | None = None
    refs: tuple[str, ...] = field(default=())
    tags: tuple[str, ...] = field(default=())

    def envelope(self) -> dict[str, str]:
        return {"payload": self.payload, "sig": self.sig}

    def envelope_json(self) -> str:
        """The envelope as compact JSON text (what EVENT frames and the export carry)."""
        return orjson.dumps({"payload": self.payload, "sig": self.sig}).decode()


@dataclass(frozen=True, slots=True)
class Limits:
    """The verification limits a forum enforces (all published in the well-known document)."""

    max_payload_bytes: int = 65536
    max_future_ms: int = 600_000
    min_pow_bits: int = 0


def event_id(payload: str | bytes) -> str:
    """Lowercase hex SHA-256 of the payload's UTF-8 bytes."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()


def leading_zero_bits(hex_id: str) -> int:
    """Proof-of-work difficulty of an id: the number of leading zero bits."""
    n = int(hex_id, 16)
    return len(hex_id) * 4 - n.bit_length()


def refs_of(kind: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids and did:keys an event's body points at (what the ``refs`` filter matches)."""
    if kind == "outcome":
        return (body["proposal"], body["adoption"]) if body.get("adoption") else (body["proposal"],)
    if kind in ("rating", "retraction", "reply"):
        return (body["target"],)
    if kind in ("amendment", "adoption"):
        return (body["proposal"],)
    if kind == "proposal":
        refs = [body["revises"]] if body.get("revises") else []
        if body.get("forks"):
            refs.append(body["forks"])
        refs.extend(body.get("accepts") or ())
        return tuple(refs)
    return _arbitration_refs(kind, body)


def _arbitration_refs(kind: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    if kind == "wiser":
        return (body["a"], body["b"])
    if kind == "flag":
        return (body["target"], *body["evidence"])
    if kind == "assessment":
        return (body["flag"],)
    if kind in ("commitment", "appeal"):
        return (body["case"],)
    if kind == "reveal":
        return (body["commitment"],)
    return ()


def tags_of(kind: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    """Slugs an event's body carries (what the ``tags`` filter matches)."""
    return tuple(body.get("tags", ())) if kind in ("proposal", "wiser") else ()


_PATTERN_WORDS: Final = {
    SLUG_RE: "lowercase letters, digits and hyphens, 1-40 characters",
    EVENT_ID_RE: "an event id (64 lowercase hex characters)",
    CRITERION_REF_RE: (
        "a criterion slug (lowercase letters, digits and hyphens, 1-40 characters) "
        "or a criterion event id (64 lowercase hex characters)"
    ),
    TARGET_RE: (
        "an event id (64 lowercase hex characters) or an agent's did:key"
    ),
    DID_RE: "a did:key (did:key:z6Mk...)",
    r"^https?://[^\s<>\"]+$": "an http:// or https:// URL without spaces",
    r"^\d{4}-\d{2}-\d{2}$": "a date written YYYY-MM-DD",
}
"""Schema patterns in words, for error messages people read."""


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _validation_message(kind: str, err: ValidationError) -> str:
    """The first schema error in words: which field, what it must be, what it got."""
    first = err.errors(include_url=False)[0]
    parts = [str(p) for p in first["loc"] if p != "[key]"]
    loc = ".".join(parts)
    what, msg = first["type"], first["msg"]
    if what == "missing":
        return f"{kind} body is missing required field {loc!r}"
    if what == "extra_forbidden":
        return f"{kind} body has unknown field {loc!r}"
    got = f": got {_got(first['input'])}" if "input" in first else ""
    # A list or map entry is named by its field ("tags must be ...", not "tags.0").
    where = f"{kind} {parts[0]}" if len(parts) > 1 else f"{kind} body field {loc!r}"
    if len(parts) > 2 and parts[1].isdigit():  # a field of a list entry: "outcome metrics[0].n"
        where = f"{kind} {parts[0]}[{parts[1]}].{'.'.join(parts[2:])}"
    pattern = (first.get("ctx") or {}).get("pattern")
    if what == "string_pattern_mismatch" and pattern in _PATTERN_WORDS:
        return f"{where} must be {_PATTERN_WORDS[pattern]}{got}"
    return f"{where}: {msg[:1].lower()}{msg[1:]}{got}"


def _check_metrics(metrics: Sequence[Metric]) -> None:
    """Absurd metrics a schema cannot see (protocol.md section 6.5)."""
    seen: set[str] = set()
    for i, m in enumerate(metrics):
        if m.observed is not None and m.n == 0:
            raise invalid(
                f"outcome body: metrics[{i}] ({m.name[:40]!r}) has an observed value from n = 0 samples:"
                " give the sample size it was measured on, or observed null if it is not measured yet"
            )
        if m.name in seen:
            raise invalid(f"outcome body: metrics[{i}]: the metric {m.name[:40]!r} is reported twice in one outcome")
        seen.add(m.name)


def validate_body(kind: str, body: Any) -> dict[str, Any]:
    """Check a body against its kind's schema and cross-field rules; returns it unchanged."""
    model = BODY_MODELS.get(kind)
    if model is None:
        raise invalid(f"unknown kind {kind[:40]!r}" if isinstance(kind, str) else "kind must be a string")
    if not isinstance(body, dict):
        raise invalid("body must be an object")
    try:
        parsed = model.model_validate(body)
    except ValidationError as e:
        raise invalid(_validation_message(kind, e)) from None
    if isinstance(parsed, OutcomeBody):
        if parsed.status == "completed" and parsed.verdict is None:
            raise invalid("outcome body: a completed outcome needs a verdict")
        if parsed.status in ("planned", "running") and parsed.verdict is not None:
            raise invalid("outcome body: verdict must be null while planned or running")
        if parsed.period.end is not None and parsed.period.end < parsed.period.start:
            raise invalid("outcome body: period.end is before period.start")
        if parsed.milestone is not None and parsed.adoption is None:
            raise invalid("outcome body: a milestone needs the adoption it measures")
        _check_metrics(parsed.metrics)
    elif isinstance(parsed, ProposalBody):
        if parsed.accepts is not None and parsed.revises is None:
            raise invalid("proposal body: accepts needs revises (only a revision takes in amendments)")
        if parsed.forks is not None and parsed.revises is not None:
            raise invalid("proposal body: a proposal either revises or forks, not both")
    elif isinstance(parsed, AmendmentBody):
        if (parsed.text is None) == (parsed.diff is None):
            raise invalid("amendment body: give exactly one of text and diff")
    elif isinstance(parsed, WiserBody) and parsed.a == parsed.b:
        raise invalid("wiser body: a and b must be two different values cards")
    elif isinstance(parsed, FlagBody) and parsed.right == "other" and not (parsed.description or "").strip():
        raise invalid("flag body: right 'other' needs a description of the right")
    return body


def parse_payload(payload: str, *, limits: Limits, now_ms: int) -> tuple[dict[str, Any], str]:
    """Parse and validate a payload (no signature check). Returns (event dict, id)."""
    if not isinstance(payload, str):
        raise invalid("payload must be a string")
    data = payload.encode("utf-8", "surrogatepass")
    if len(data) > limits.max_payload_bytes:
        raise ProtocolError("too-large", f"payload is {len(data)} bytes, limit {limits.max_payload_bytes}")
    try:
        payload.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid("payload is not valid UTF-8 text") from None
    obj = strictjson.loads(data, what="payload")
    if not isinstance(obj, dict):
        raise invalid("payload must be a JSON object")
    keys = obj.keys()
    if unknown := keys - TOP_LEVEL_KEYS:
        raise invalid(f"unknown top-level key {sorted(unknown)[0][:40]!r}")
    if missing := REQUIRED_TOP_LEVEL - keys:
        raise invalid(f"missing top-level key {sorted(missing)[0]!r}")
    if obj["v"] != PROTOCOL_VERSION or type(obj["v"]) is not int:
        raise invalid(f"v must be {PROTOCOL_VERSION}")
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in BODY_MODELS:
        raise invalid(f"unknown kind {str(kind)[:40]!r}")
    author = obj["author"]
    if not isinstance(author, str):
        raise invalid("author must be a did:key string")
    public_key_from_did(author)  # raises invalid: malformed did:key
    created_at = obj["created_at"]
    if type(created_at) is not int or created_at < 0:
        raise invalid("created_at must be a non-negative integer (milliseconds since the epoch)")
    if created_at > now_ms + limits.max_future_ms:
        raise invalid(f"created_at is more than {limits.max_future_ms} ms in the future")
    if "nonce" in obj:
        nonce = obj["nonce"]
        if not isinstance(nonce, str) or len(nonce) > 64:
            raise invalid("nonce must be a string of at most 64 characters")
    validate_body(kind, obj["body"])
    eid = hashlib.sha256(data).hexdigest()
    if limits.min_pow_bits and leading_zero_bits(eid) < limits.min_pow_bits:
        raise ProtocolError("pow", f"difficulty {leading_zero_bits(eid)} is below the minimum {limits.min_pow_bits}")
    return obj, eid


def event_from_parsed(obj: Mapping[str, Any], eid: str, payload: str, sig: str) -> Event:
    """The :class:`Event` of a payload already parsed and checked (by this module or the log)."""
    kind, body = obj["kind"], obj["body"]
    return Event(
        id=eid,
        kind=kind,
        author=obj["author"],
        created_at=obj["created_at"],
        body=body,
        payload=payload,
        sig=sig,
        nonce=obj.get("nonce"),
        refs=refs_of(kind, body),
        tags=tags_of(kind, body),
    )


def parse_envelope(envelope: Any) -> tuple[str, str]:
    """Check the envelope's shape: exactly ``payload`` and ``sig``, both strings."""
    if not isinstance(envelope, dict):
        raise invalid("envelope must be an object with payload and sig")
    if envelope.keys() != {"payload", "sig"}:
        extra = sorted(envelope.keys() ^ {"payload", "sig"})
        raise invalid(f"envelope must have exactly the keys payload and sig (not {extra[0][:40]!r})")
    payload, sig = envelope["payload"], envelope["sig"]
    if not isinstance(payload, str) or not isinstance(sig, str):
        raise invalid("envelope payload and sig must be strings")
    return payload, sig


def verify_envelope(envelope: Any, *, limits: Limits, now_ms: int) -> Event:
    """Everything that can be checked without the log, ending with the signature.

    Raises only :class:`ProtocolError`. Safe to call from any thread.
    """
    try:
        payload, sig = parse_envelope(envelope)
        obj, eid = parse_payload(payload, limits=limits, now_ms=now_ms)
        verify(obj["author"], payload.encode("utf-8"), sig)
    except ProtocolError:
        raise
    except Exception as e:  # never let a bug in validation escape as something else
        raise ProtocolError("error", f"could not verify event ({type(e).__name__})") from e
    return event_from_parsed(obj, eid, payload, sig)


# --------------------------------------------------------------------------- context rules


@dataclass(frozen=True, slots=True)
class Known:
    """What :func:`check_context` needs to know about an event the log already holds."""

    kind: str
    author: str
    proposal: str | None = None  # body.proposal of an amendment or adoption


def check_context(
    event: Event,
    lookup: Callable[[str], Known | None],
    has_community: Callable[[str], bool],
    has_published: Callable[[str], bool] | None = None,
) -> None:
    """Rules that depend on the log. ``lookup(id)`` returns the stored event's kind and author;
    ``has_published(did)`` whether that did:key authored any event the log holds (None:
    the rule that a rated agent must exist is not checked)."""
    body = event.body
    if event.kind == "rating":
        target = body["target"]
        if target.startswith("did:"):
            if not is_did(target):
                raise invalid("rating target is a malformed did:key")
            if target == event.author:
                raise invalid("rating yourself is not allowed")
            if has_published is not None and not has_published(target):
                raise invalid("rating target did:key has published nothing on this forum")
        else:
            known = lookup(target)
            if known is None:
                raise invalid("rating target is not an event this forum holds")
            if known.author == event.author:
                raise invalid("rating your own event is not allowed")
            if known.kind in ("rating", "retraction"):
                raise invalid(f"a {known.kind} cannot be rated")
    elif event.kind == "outcome":
        if not has_community(event.author):
            raise invalid("outcome author has not published a community profile")
        known = lookup(body["proposal"])
        if known is None or known.kind != "proposal":
            raise invalid("outcome proposal is not a proposal this forum holds")
    elif event.kind == "retraction":
        known = lookup(body["target"])
        if known is None:
            raise invalid("retraction target is not an event this forum holds")
        if known.author != event.author:
            raise invalid("only the author of an event can retract it")
        if known.kind == "retraction":
            raise invalid("a retraction cannot be retracted")
        if known.kind in UNRETRACTABLE:
            raise invalid(f"a {known.kind} is binding and cannot be retracted")
    elif event.kind == "proposal":
        if body.get("revises"):
            known = lookup(body["revises"])
            if known is None or known.kind != "proposal":
                raise invalid("revises does not name a proposal this forum holds")
            if known.author != event.author:
                raise invalid("a proposal can only revise its own author's proposal")
        _check_governance_proposal(event, lookup)
    elif event.kind in GOVERNANCE_KINDS:
        _check_governance(event, lookup, has_community)
    elif event.kind in ARBITRATION_KINDS:
        _check_arbitration_context(event, lookup)
    if event.kind == "outcome" and body.get("adoption"):
        known = lookup(body["adoption"])
        if known is None or known.kind != "adoption":
            raise invalid("outcome adoption is not an adoption this forum holds")
        if known.author != event.author:
            raise invalid("an outcome can only cite its own community's adoption")
        if known.proposal != body["proposal"]:
            raise invalid("outcome adoption is of another proposal")


# --- governance context rules (issue 13)


def _check_governance_proposal(event: Event, lookup: Callable[[str], Known | None]) -> None:
    body = event.body
    if body.get("forks"):
        known = lookup(body["forks"])
        if known is None or known.kind not in ("proposal", "amendment"):
            raise invalid("forks does not name a proposal or amendment this forum holds")
    for amendment in body.get("accepts") or ():
        known = lookup(amendment)
        if known is None or known.kind != "amendment":
            raise invalid("accepts names an event that is not an amendment this forum holds")
        amended = lookup(known.proposal) if known.proposal else None
        if amended is None or amended.author != event.author:
            raise invalid("only the author of the amended proposal can accept an amendment")


def _check_governance(event: Event, lookup: Callable[[str], Known | None], has_community: Callable[[str], bool]) -> None:
    body = event.body
    if event.kind == "reply":
        if lookup(body["target"]) is None:
            raise invalid("reply target is not an event this forum holds")
        return
    known = lookup(body["proposal"])
    if known is None or known.kind != "proposal":
        raise invalid(f"{event.kind} proposal is not a proposal this forum holds")
    if event.kind == "amendment":
        if known.author == event.author:
            raise invalid("amending your own proposal is not allowed (publish a revision)")
    elif not has_community(event.author):
        raise invalid("adoption author has not published a community profile")


# --- values and arbitration context rules (issue 14)


def _held(lookup: Callable[[str], Known | None], eid: str, kind: str, what: str) -> Known:
    known = lookup(eid)
    if known is None or known.kind != kind:
        raise invalid(f"{what} is not a {kind} this forum holds")
    return known


def _check_arbitration_context(event: Event, lookup: Callable[[str], Known | None]) -> None:
    """Context rules of the values and arbitration kinds (protocol.md section 7)."""
    body = event.body
    if event.kind == "wiser":
        _held(lookup, body["a"], "criterion", "wiser card a")
        _held(lookup, body["b"], "criterion", "wiser card b")
    elif event.kind == "flag":
        target = body["target"]
        if target.startswith("did:"):
            if not is_did(target):
                raise invalid("flag target is a malformed did:key")
            if target == event.author:
                raise invalid("flagging yourself is not allowed")
        else:
            known = lookup(target)
            if known is None:
                raise invalid("flag target is not an event this forum holds")
            if known.author == event.author:
                raise invalid("flagging your own event is not allowed")
        for i, eid in enumerate(body["evidence"]):
            if lookup(eid) is None:
                raise invalid(f"flag evidence.{i} is not an event this forum holds")
    elif event.kind == "assessment":
        if _held(lookup, body["flag"], "flag", "assessment flag").author == event.author:
            raise invalid("the flagger cannot assess their own flag")
    elif event.kind in ("commitment", "appeal"):
        _held(lookup, body["case"], "flag", f"{event.kind} case")
    elif event.kind == "reveal":
        if _held(lookup, body["commitment"], "commitment", "reveal commitment").author != event.author:
            raise invalid("a reveal must open its own author's commitment")
