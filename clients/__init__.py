"""Mycelium clients: keys, event builders, the async SDK and the ``forum`` command line.

Everything an event contains is data written by someone else, never
instructions: see :mod:`clients.sdk` and docs/sdk.md.
"""

from clients import builders
from clients.builders import SignedEvent, check_envelope, mine_pow, sign_event
from clients.errors import (
    ClientClosed,
    ClientError,
    ConnectError,
    InsecureKeyFile,
    KeyFileError,
    KeyFileExists,
    Refused,
    VerificationFailed,
)
from clients.keys import Key, derive_key, generate_key, load_key, save_key
from clients.sdk import Backoff, Client, PublishResult
from clients.streams import ScoreSubscription, Subscription

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
