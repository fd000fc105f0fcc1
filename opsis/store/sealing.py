"""Encryption at rest of face vectors, with a key the operator holds (`OPSIS_VECTOR_KEY`).

Each vector is sealed with AES-256-GCM under a fresh 96-bit nonce (stored before the ciphertext),
so the database file holds no vector in the clear and a vector changed on disk fails to open. The
key is never stored: without it the collections cannot be searched, and with a wrong one the store
refuses to open (a sealed check value tells).
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


class VectorSealError(RuntimeError):
    """The vector key is missing, malformed, or not the one the vectors were sealed with."""


class VectorSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VectorSealError(f"The vector key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str) -> VectorSeal:
        """From OPSIS_VECTOR_KEY: base64url of 32 random bytes (`opsis keys vector-key` makes one)."""
        try:
            return cls(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (binascii.Error, ValueError) as error:
            raise VectorSealError("OPSIS_VECTOR_KEY must be base64url of 32 bytes") from error

    def seal(self, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, None)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
        except InvalidTag:
            raise VectorSealError("A stored vector does not open with this vector key") from None


def new_vector_key() -> str:
    """A fresh key, in OPSIS_VECTOR_KEY's form."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")
