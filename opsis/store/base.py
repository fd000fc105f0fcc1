"""What the rest of Opsis asks of storage, in its own terms; backends implement these."""

from __future__ import annotations

from typing import Protocol


class ObjectSource(Protocol):
    """Reads objects named the way S3 names them (bucket, key, optional version)."""

    def get(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        """The object's bytes. Raises InvalidS3ObjectException when it cannot be read and
        ImageTooLargeException when it is larger than `max_bytes`."""
        ...
