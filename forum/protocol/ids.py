"""Identifier patterns of the protocol, in one place (docs/protocol.md).

Every pattern is anchored (``^...$``); use the compiled ones with ``fullmatch``.
The event schemas (:mod:`forum.protocol.events`) take the strings, the filters,
the wire, the public web and the SDK the compiled patterns. (The browser script
``feeds/static/live.js`` repeats the event id and did:key patterns: it cannot
import them.)
"""

from __future__ import annotations

import re
from typing import Final

EVENT_ID_RE: Final = r"^[0-9a-f]{64}$"
"""An event id: the lowercase hex SHA-256 of its payload."""
DID_RE: Final = r"^did:key:z[1-9A-HJ-NP-Za-km-z]{47}$"
"""An Ed25519 ``did:key`` (multibase base58btc); :func:`forum.protocol.identity.is_did` also decodes it."""
SLUG_RE: Final = r"^[a-z0-9-]{1,40}$"
"""Tags, criterion keys and parameter keys: lowercase letters, digits and hyphens, 1 to 40."""
TARGET_RE: Final = r"^([0-9a-f]{64}|did:key:z[1-9A-HJ-NP-Za-km-z]{47})$"
"""What a rating (and most references) may point at: an event id or an agent's did:key."""
CRITERION_REF_RE: Final = r"^([a-z0-9-]{1,40}|[0-9a-f]{64})$"
"""A criterion: a slug, or the id of a criterion event."""

EVENT_ID: Final = re.compile(EVENT_ID_RE)
DID: Final = re.compile(DID_RE)
SLUG: Final = re.compile(SLUG_RE)
TARGET: Final = re.compile(TARGET_RE)
CRITERION_REF: Final = re.compile(CRITERION_REF_RE)
