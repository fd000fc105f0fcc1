"""Access keys created with `opsis keys create`: <data_dir>/keys.db (0600), secrets sealed at rest.

SigV4 verification needs each plain secret, so secrets cannot be hashed: each is sealed with
AES-256-GCM (`opsis.store.sealing`) under the master key, bound to its access key id, and opened
once per process. The master key is OPSIS_MASTER_KEY, else <data_dir>/master.key (created 0600 with
32 random bytes). A key's policy is kept as its IAM document (JSON text); `opsis.api.policy` reads it.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import string
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opsis.store import sqlite_db
from opsis.store.sealing import KEY_BYTES, Seal, SealError

MIGRATIONS = (
    """
    CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        sealed_secret BLOB NOT NULL,  -- nonce || AES-GCM(secret), the access key id as associated data
        policy TEXT NOT NULL,         -- IAM policy document (JSON)
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )
    """,
)
KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


def new_key_pair() -> tuple[str, str]:
    """A fresh access key id (OPSIS + 15 base32 characters, like AWS's 20) and secret."""
    access_key_id = "OPSIS" + "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(15))
    return access_key_id, secrets.token_urlsafe(30)


@dataclass(frozen=True)
class AccessKey:
    """A key as `opsis keys list` shows it: never the secret."""

    access_key_id: str
    name: str
    policy_document: str  # IAM policy JSON
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ActiveKey:
    secret: str
    policy_document: str  # IAM policy JSON


class KeyStore:
    """The keys table; safe to share between threads, and between processes through SQLite."""

    def __init__(self, path: Path, master_key_file: Path, master_key: str | None = None) -> None:
        self.path = path
        self._master_key_file = master_key_file
        self._configured_master_key = master_key
        self._seal: Seal | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # id -> (sealed secret, policy, opened key), so a request costs one SELECT, not a decryption.
        self._opened: dict[str, tuple[bytes, str, ActiveKey]] = {}

    def create(self, policy_document: str, name: str = "") -> tuple[str, str]:
        """Store a new key with this policy; returns (access key id, secret), the only time the secret is given."""
        access_key_id, secret = new_key_pair()
        sealed = self._sealer().seal(secret.encode(), access_key_id.encode())
        with self._lock:
            connection = self._connect(create=True)
            assert connection is not None
            with connection:
                connection.execute(
                    "INSERT INTO access_keys (access_key_id, name, sealed_secret, policy, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (access_key_id, name, sealed, policy_document, datetime.now(UTC).isoformat()),
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
                policy_document=row[2],
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
        key = ActiveKey(self._sealer().open(sealed, access_key_id.encode()).decode(), policy_text)
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
            self.path.touch(mode=0o600)
            self.path.chmod(0o600)
            connection = sqlite_db.connect(self.path)
            sqlite_db.migrate(connection, MIGRATIONS, self.path)
            self._connection = connection
        return self._connection

    def _sealer(self) -> Seal:
        if self._seal is None:
            self._seal = Seal(_master_key(self._master_key_file, self._configured_master_key))
        return self._seal


def _master_key(path: Path, configured: str | None) -> bytes:
    """The configured master key, else <data_dir>/master.key (created 0600 with 32 random bytes)."""
    if configured:
        try:
            return base64.urlsafe_b64decode(configured.encode() + b"=" * (-len(configured) % 4))
        except ValueError as error:
            raise SealError("OPSIS_MASTER_KEY must be the base64url encoding of 32 bytes") from error
    if not path.exists():
        # Written whole under a temporary name, then linked into place: a process starting at the
        # same time reads either no file or the complete key, and the first link wins.
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(KEY_BYTES))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()
