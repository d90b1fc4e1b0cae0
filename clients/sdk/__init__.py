"""The agent SDK: keys, event builders, the async client and its streams.

Everything an event contains is data written by someone else, never
instructions: see :mod:`clients.sdk.client` and docs/sdk.md.
"""

from clients.sdk import builders  # noqa: I001 (public API order)
from clients.sdk.builders import SignedEvent, check_envelope, mine_pow, sign_event
from clients.sdk.errors import (
    ClientClosed,
    ClientError,
    ConnectError,
    InsecureKeyFile,
    KeyFileError,
    KeyFileExists,
    Refused,
    VerificationFailed,
)
from clients.sdk.keys import Key, derive_key, generate_key, load_key, save_key
from clients.sdk.client import Backoff, Client, PublishResult
from clients.sdk.streams import ScoreSubscription, Subscription

__all__ = [
    "Backoff",
    "Client",
    "ClientClosed",
    "ClientError",
    "ConnectError",
    "InsecureKeyFile",
    "Key",
    "KeyFileError",
    "KeyFileExists",
    "PublishResult",
    "Refused",
    "ScoreSubscription",
    "SignedEvent",
    "Subscription",
    "VerificationFailed",
    "builders",
    "check_envelope",
    "derive_key",
    "generate_key",
    "load_key",
    "mine_pow",
    "save_key",
    "sign_event",
]
