"""Settings from command-line flags and OPSIS_* environment variables (flags win)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Everything an operator can configure; built once in `serve`/`main` and passed down."""

    host: str = "127.0.0.1"
    port: int = 8085
    data_dir: Path = Path(".opsis")
    # Collection ARNs name this region and account, as Rekognition's do.
    region: str = "us-east-1"
    account_id: str = "000000000000"
    # One access key given directly; keys in <data_dir>/credentials are accepted as well.
    access_key_id: str | None = None
    secret_access_key: str | None = None
    # Encrypts the secrets of `opsis keys create` keys (base64url of 32 bytes); unset: <data_dir>/master.key.
    master_key: str | None = None
    # An S3-compatible endpoint for Image.S3Object; unset means local buckets under data_dir/buckets.
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    # Requests running models at once, and ONNX Runtime threads per request.
    inference_workers: int = 2
    model_threads: int = 2
    face_detector: str = "retinaface-mnet025"
    face_embedder: str = "dlib-resnet29"
    # DetectModerationLabels' model (opsis.vision.registry.CONTENT_MODERATORS).
    content_moderator: str = "open-nsfw"
    # DetectText's model (opsis.vision.registry.TEXT_READERS).
    text_reader: str = "ppocrv6-small"
    # DetectLabels' model (opsis.vision.registry.OBJECT_DETECTORS).
    object_detector: str = "nanodet-m"
    # DetectProtectiveEquipment's body-part model (opsis.vision.registry.POSE_ESTIMATORS).
    pose_estimator: str = "movenet-multipose"
    # Where models converted from their packages' formats (e.g. dlib's .dat to ONNX) are cached.
    model_cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "opsis" / "models"
    # The face store: unset, the embedded SQLite store under data_dir; a postgresql:// URL, PostgreSQL
    # with pgvector (opsis.store.postgres; needs the `postgresql` extra).
    store: str | None = None
    # Collections of at least this many faces are searched through an HNSW graph, smaller ones exactly.
    hnsw_threshold: int = 100_000
    # Largest accepted request body: 5 MB of image bytes is ~7 MB once base64-encoded in JSON.
    max_request_bytes: int = 8 * 1024 * 1024
    # SigV4 timestamps may differ from the server clock by this much (AWS allows 15 minutes).
    max_clock_skew_seconds: int = 900
    # Requests per second allowed to each access key, with bursts of up to rate_limit_burst
    # (ThrottlingException past it; 0 turns the limit off). Health checks are never limited.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # Requests that may wait for an inference worker; more are refused at once with
    # ProvisionedThroughputExceededException rather than queued without end.
    inference_queue_depth: int = 64
    # Serve HTTPS with this certificate chain and private key (PEM files); both or neither.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # Stored-video jobs: worker processes (each loads its own models), run at this nice level so
    # the image API keeps the CPU it needs; frames sampled per second of video (text: fewer, OCR is slow).
    video_workers: int = 1
    video_worker_nice: int = 10
    video_frames_per_second: float = 5.0
    video_text_frames_per_second: float = 1.0
    # Start* is refused (LimitExceededException) while this many jobs are queued or in progress
    # (Rekognition's default quota is 20 concurrent stored-video jobs).
    video_max_open_jobs: int = 20
    # A job whose worker stops renewing its lease this long is taken again, at most this many times.
    video_job_lease_seconds: int = 60
    video_job_attempts: int = 3
    # Finished jobs and their results are kept this long (Rekognition keeps them 7 days).
    video_job_retention_days: int = 7
    # Rekognition's limits on stored video: 10 GB and 6 hours.
    video_max_bytes: int = 10 * 1024**3
    video_max_seconds: int = 6 * 3600
    # Where job completion messages go (Rekognition publishes them to SNS): an HTTP(S) URL that
    # receives an SNS-style JSON notification, whatever the job's NotificationChannel.SNSTopicArn.
    notification_webhook: str | None = None
    # Identification (SearchFaces*, SearchUsers*, StartFaceSearch) below this threshold is refused;
    # high_stakes holds it at 99 or more, raising lower thresholds with a warning header.
    identification_threshold_floor: float = 0.0
    high_stakes: bool = False
    # Encrypts stored face vectors at rest (base64url of 32 bytes, held by the operator, never
    # stored); once set, the store cannot be opened without it.
    vector_key: str | None = None
    # Biometric operations are recorded in <data_dir>/audit.db and kept this long.
    audit_retention_days: int = 365
    # Check every response against botocore's output shape (the test suite turns this on).
    validate_responses: bool = False
    log_level: str = "info"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def keys_db(self) -> Path:
        return self.data_dir / "keys.db"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def audit_db(self) -> Path:
        return self.data_dir / "audit.db"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.db"

    @property
    def buckets_dir(self) -> Path:
        return self.data_dir / "buckets"

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then OPSIS_<FIELD> variables, then non-None keyword overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"OPSIS_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = _parse(field.type, raw, field.name)
        values.update({name: value for name, value in overrides.items() if value is not None})
        settings = replace(cls(), **values)
        return replace(settings, data_dir=Path(settings.data_dir))


def _parse(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind.startswith("Path"):
            return Path(raw)
    except ValueError as error:
        raise ValueError(f"OPSIS_{name.upper()}={raw!r} is not a valid {kind}") from error
    return raw
