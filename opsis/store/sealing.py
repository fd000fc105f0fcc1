"""Encryption at rest: AES-256-GCM sealing of what the stores keep secret.

Face vectors are sealed with a key the operator holds (`OPSIS_VECTOR_KEY`, never stored): without it
the collections cannot be searched, and with a wrong one the store refuses to open (a sealed check
value tells). Access-key secrets are sealed under the master key (`opsis.store.keys`). Each value is
sealed under a fresh 96-bit nonce (stored before the ciphertext), optionally bound to associated
data (the access key id), so a value changed or moved on disk fails to open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
CHECK_PLAINTEXT = b"opsis vector key check"


class SealError(RuntimeError):
    """A key is missing, malformed, or not the one the values were sealed with."""


class Seal:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SealError(f"A key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str, setting: str = "OPSIS_VECTOR_KEY") -> Seal:
        """From a setting holding base64url of 32 random bytes (`opsis keys vector-key` makes one)."""
        try:
            return cls(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (binascii.Error, ValueError, SealError) as error:
            raise SealError(f"{setting} must be base64url of 32 bytes") from error

    def seal(self, plain: bytes, associated: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, associated)

    def open(self, sealed: bytes, associated: bytes = b"") -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except InvalidTag:
            raise SealError("A stored value does not open with this key") from None


def new_key() -> str:
    """A fresh key, in OPSIS_VECTOR_KEY's (and OPSIS_MASTER_KEY's) form."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")
