"""Keyed pseudonyms for customer, conversation and agent ids: HMAC-SHA256 under a secret key.

The same id gives the same token in every run (joins across days still work) and nobody without the key can
recompute or reverse it: unkeyed hashes of phone numbers can be brute-forced in minutes. The key comes from a
file or the CENTRALITA_PSEUDONYM_KEY environment variable, never from code; it is held in the Python closure
Spark ships to its workers, so it never appears in a query plan or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

KEY_ENV = "CENTRALITA_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
TOKEN_HEX_CHARS = 32


class PseudonymKeyError(ValueError):
    """No usable pseudonymization key; the message says where one is expected (never the key itself)."""


def load_key(key_file: Path | None = None) -> bytes:
    """The key from `key_file`, else from CENTRALITA_PSEUDONYM_KEY; at least 16 bytes."""
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as error:
            raise PseudonymKeyError(f"cannot read the key file {key_file}: {error.strerror}") from None
        source = str(key_file)
    else:
        key = os.environ.get(KEY_ENV, "").encode()
        source = KEY_ENV
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonymization key from {source} is missing or shorter than {MIN_KEY_BYTES} bytes")
    return key


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(<key>)"

    def token(self, kind: str, value: str | None) -> str | None:
        """`kind` (customer, conversation, agent) keeps equal values of different kinds apart."""
        if value is None or value == "":
            return None
        digest = hmac.new(self._key, f"{kind}:{value}".encode("utf-8", errors="replace"), hashlib.sha256).hexdigest()
        return digest[:TOKEN_HEX_CHARS]
