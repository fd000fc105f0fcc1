"""Object sources for `Image.S3Object`: local buckets (the default) or an S3-compatible endpoint."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opsis.config import Settings
from opsis.errors import ImageTooLargeException, InvalidS3ObjectException
from opsis.store.base import ObjectSource

log = logging.getLogger(__name__)

# Rekognition's own wording for any object it cannot read.
UNREADABLE = "Unable to get object metadata from S3. Check object key, region and/or access permissions."


def object_source(settings: Settings) -> ObjectSource:
    """The configured source: an S3-compatible endpoint if one is set, else local buckets."""
    if settings.s3_endpoint_url:
        return S3Objects(settings)
    return LocalBuckets(settings.buckets_dir)


class LocalBuckets:
    """Each bucket is a directory under `root`; each key a file path inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        size = self.size(bucket, key, version)
        if size > max_bytes:
            raise ImageTooLargeException(f"S3 object is {size} bytes; the limit is {max_bytes}")
        try:
            return self._path(bucket, key, version).read_bytes()
        except OSError as error:
            log.info("local object %s/%s unreadable: %s", bucket, key, error)
            raise InvalidS3ObjectException(UNREADABLE) from error

    def size(self, bucket: str, key: str, version: str | None) -> int:
        path = self._path(bucket, key, version)
        try:
            if not path.is_file():
                raise InvalidS3ObjectException(UNREADABLE)
            return path.stat().st_size
        except OSError as error:
            log.info("local object %s/%s unreadable: %s", bucket, key, error)
            raise InvalidS3ObjectException(UNREADABLE) from error

    @contextmanager
    def local_file(self, bucket: str, key: str, version: str | None) -> Iterator[Path]:
        self.size(bucket, key, version)
        yield self._path(bucket, key, version)

    def _path(self, bucket: str, key: str, version: str | None) -> Path:
        if version is not None:
            raise InvalidS3ObjectException("Local buckets are not versioned: omit S3Object.Version")
        bucket_dir = (self.root / bucket).resolve()
        path = (bucket_dir / key).resolve()
        # A key such as "../../credentials" must not escape its bucket.
        if bucket_dir.parent != self.root.resolve() or not path.is_relative_to(bucket_dir):
            raise InvalidS3ObjectException(UNREADABLE)
        return path


class S3Objects:
    """Objects read from an S3-compatible endpoint (MinIO, Ceph, AWS S3, ...)."""

    def __init__(self, settings: Settings) -> None:
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )

    def get(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        size = self.size(bucket, key, version)
        if size > max_bytes:
            raise ImageTooLargeException(f"S3 object is {size} bytes; the limit is {max_bytes}")
        try:
            response = self._client.get_object(Bucket=bucket, Key=key, **_version(version))
            body: bytes = response["Body"].read(max_bytes + 1)
        except (ClientError, BotoCoreError) as error:
            log.info("S3 object %s/%s unreadable: %s", bucket, key, error)
            raise InvalidS3ObjectException(UNREADABLE) from error
        if len(body) > max_bytes:  # the object changed between HEAD and GET
            raise ImageTooLargeException(f"S3 object is larger than the {max_bytes}-byte limit")
        return body

    def size(self, bucket: str, key: str, version: str | None) -> int:
        try:
            return int(self._client.head_object(Bucket=bucket, Key=key, **_version(version))["ContentLength"])
        except (ClientError, BotoCoreError) as error:
            log.info("S3 object %s/%s unreadable: %s", bucket, key, error)
            raise InvalidS3ObjectException(UNREADABLE) from error

    @contextmanager
    def local_file(self, bucket: str, key: str, version: str | None) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="opsis-video-") as folder:
            path = Path(folder) / "video"
            try:
                self._client.download_file(bucket, key, str(path), ExtraArgs=_version(version) or None)
            except (ClientError, BotoCoreError) as error:
                log.info("S3 object %s/%s unreadable: %s", bucket, key, error)
                raise InvalidS3ObjectException(UNREADABLE) from error
            yield path


def _version(version: str | None) -> dict[str, str]:
    return {"VersionId": version} if version else {}
