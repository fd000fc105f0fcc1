"""Access keys created with `opsis keys create`: <data_dir>/keys.db, secrets encrypted at rest.

SigV4 verification needs each plain secret (it recomputes the HMAC), so secrets cannot be stored
as hashes: each is sealed with AES-256-GCM under a master key, bound to its access key id, and
opened only in memory. The master key comes from OPSIS_MASTER_KEY (base64url of 32 bytes) or
<data_dir>/master.key, created 0600 on first use; keep it out of backups of keys.db, or both leak
together. The server reads the table on every request it verifies (one indexed row), so keys
created or revoked while it runs count at once.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import string
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opsis.api.policy import Policy, policy_from_document

KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
NONCE_BYTES = 12
SCHEMA = """
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    sealed_secret BLOB NOT NULL,  -- nonce || AES-GCM(secret), the access key id as associated data
    policy TEXT NOT NULL,         -- IAM policy document (JSON)
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


def new_key_pair() -> tuple[str, str]:
    """A fresh access key id (OPSIS + 15 base32 characters, like AWS's 20) and secret."""
    access_key_id = "OPSIS" + "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(15))
    return access_key_id, secrets.token_urlsafe(30)


@dataclass(frozen=True)
class AccessKey:
    """A key as `opsis keys list` shows it: never the secret."""

    access_key_id: str
    name: str
    policy: Policy
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ActiveKey:
    secret: str
    policy: Policy


class KeyStore:
    """The keys table; safe to share between threads, and between processes through SQLite."""

    def __init__(self, path: Path, master_key_file: Path, master_key: str | None = None) -> None:
        self.path = path
        self._master_key_file = master_key_file
        self._configured_master_key = master_key
        self._cipher: AESGCM | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # (id, sealed secret, policy) -> opened key, so a request costs one SELECT, not a decryption.
        self._opened: dict[str, tuple[bytes, str, ActiveKey]] = {}

    def create(self, policy: Policy, name: str = "") -> tuple[str, str]:
        """Store a new key with `policy`; returns (access key id, secret), the only time the secret is given."""
        access_key_id, secret = new_key_pair()
        sealed = self._seal(access_key_id, secret)
        with self._lock:
            connection = self._connect(create=True)
            assert connection is not None
            with connection:
                connection.execute(
                    "INSERT INTO access_keys (access_key_id, name, sealed_secret, policy, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (access_key_id, name, sealed, policy.to_json(), datetime.now(UTC).isoformat()),
                )
        return access_key_id, secret

    def revoke(self, access_key_id: str) -> bool:
        """Revoke a key for good; False if there is no such key or it was revoked already."""
        with self._lock:
            connection = self._connect(create=False)
            if connection is None:
                return False
            with connection:
                cursor = connection.execute(
                    "UPDATE access_keys SET revoked_at = ? WHERE access_key_id = ? AND revoked_at IS NULL",
                    (datetime.now(UTC).isoformat(), access_key_id),
                )
            self._opened.pop(access_key_id, None)
            return cursor.rowcount == 1

    def all(self) -> list[AccessKey]:
        """Every key, revoked ones too, oldest first."""
        with self._lock:
            connection = self._connect(create=False)
            rows = (
                []
                if connection is None
                else connection.execute(
                    "SELECT access_key_id, name, policy, created_at, revoked_at FROM access_keys ORDER BY created_at"
                ).fetchall()
            )
        return [
            AccessKey(
                access_key_id=row[0],
                name=row[1],
                policy=policy_from_document(_json(row[2])),
                created_at=datetime.fromisoformat(row[3]),
                revoked_at=datetime.fromisoformat(row[4]) if row[4] else None,
            )
            for row in rows
        ]

    def active(self, access_key_id: str) -> ActiveKey | None:
        """The secret and policy of a key that exists and is not revoked, else None."""
        with self._lock:
            connection = self._connect(create=False)
            if connection is None:
                return None
            row = connection.execute(
                "SELECT sealed_secret, policy FROM access_keys WHERE access_key_id = ? AND revoked_at IS NULL",
                (access_key_id,),
            ).fetchone()
            if row is None:
                self._opened.pop(access_key_id, None)
                return None
            sealed, policy_text = bytes(row[0]), str(row[1])
            cached = self._opened.get(access_key_id)
            if cached is not None and cached[0] == sealed and cached[1] == policy_text:
                return cached[2]
        key = ActiveKey(self._open(access_key_id, sealed), policy_from_document(_json(policy_text)))
        with self._lock:
            self._opened[access_key_id] = (sealed, policy_text, key)
        return key

    def count_active(self) -> int:
        with self._lock:
            connection = self._connect(create=False)
            if connection is None:
                return 0
            return int(connection.execute("SELECT COUNT(*) FROM access_keys WHERE revoked_at IS NULL").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        """The connection (caller holds the lock); None while there is no keys.db and `create` is False."""
        if self._connection is None:
            if not create and not self.path.exists():
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            os.chmod(self.path, 0o600)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            self._connection = connection
        return self._connection

    def _seal(self, access_key_id: str, secret: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead().encrypt(nonce, secret.encode(), access_key_id.encode())

    def _open(self, access_key_id: str, sealed: bytes) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead().decrypt(nonce, ciphertext, access_key_id.encode()).decode()

    def _aead(self) -> AESGCM:
        if self._cipher is None:
            self._cipher = AESGCM(_master_key(self._master_key_file, self._configured_master_key))
        return self._cipher


def _master_key(path: Path, configured: str | None) -> bytes:
    """The configured master key, else <data_dir>/master.key (created 0600 with 32 random bytes)."""
    if configured:
        key = base64.urlsafe_b64decode(configured.encode() + b"=" * (-len(configured) % 4))
        if len(key) != 32:
            raise ValueError("OPSIS_MASTER_KEY must be the base64url encoding of 32 bytes")
        return key
    if not path.exists():
        # Written whole under a temporary name, then linked into place: a process starting at the
        # same time reads either no file or the complete key, and the first link wins.
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(AESGCM.generate_key(bit_length=256))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte master key")
    return key


def _json(text: str) -> object:
    return json.loads(text)
