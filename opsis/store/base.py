"""What the rest of Opsis asks of storage, in its own terms; backends implement these Protocols.

Nothing outside `opsis.store` knows which backend runs. Backends raise `opsis.errors` types
(ResourceNotFoundException, ResourceAlreadyExistsException, ConflictException, ...), never their
driver's errors, and keep their transactions inside: a method that returns has committed durably.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray


class ObjectSource(Protocol):
    """Reads objects named the way S3 names them (bucket, key, optional version)."""

    def get(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        """The object's bytes. Raises InvalidS3ObjectException when it cannot be read and
        ImageTooLargeException when it is larger than `max_bytes`."""
        ...

    def size(self, bucket: str, key: str, version: str | None) -> int:
        """The object's size in bytes; InvalidS3ObjectException when it cannot be read."""
        ...

    def local_file(self, bucket: str, key: str, version: str | None) -> AbstractContextManager[Path]:
        """The object as a file on this machine for the `with` block (a video is read by path,
        never held in memory): a local bucket's own file, or a temporary download deleted after."""
        ...


@dataclass(frozen=True)
class Collection:
    collection_id: str
    face_model_version: str  # every vector in the collection comes from this model
    created_at: datetime
    face_count: int
    user_count: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewFace:
    """A face to index: its vector and the metadata Rekognition returns for it. No pixels."""

    image_id: str
    external_image_id: str | None
    bounding_box: tuple[float, float, float, float]  # Width, Height, Left, Top as image ratios
    confidence: float  # 0-100
    vector: NDArray[np.float32]


@dataclass(frozen=True)
class Face:
    face_id: str
    image_id: str
    external_image_id: str | None
    bounding_box: tuple[float, float, float, float]  # Width, Height, Left, Top
    confidence: float
    user_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class User:
    user_id: str
    face_count: int
    created_at: datetime


@dataclass(frozen=True)
class Celebrity:
    """A person of the operator's celebrity gallery (RecognizeCelebrities, GetCelebrityInfo);
    the faces are kept apart, in an internal collection."""

    celebrity_id: str
    name: str
    urls: tuple[str, ...] = ()
    known_gender: str | None = None  # Male, Female, Nonbinary or Unlisted


@dataclass(frozen=True)
class Neighbour:
    """A stored face near a query vector; `distance` is Euclidean (L2) in embedding space."""

    face: Face
    distance: float


@dataclass(frozen=True)
class NewJob:
    """A stored-video job as a Start* request asked for it."""

    operation: str  # the Start* operation, e.g. StartLabelDetection
    params: Mapping[str, Any]  # its request parameters, without ClientRequestToken
    client_token: str | None = None
    fingerprint: str = ""  # of `params`: a token reused with other parameters is refused
    local_path: str | None = None  # a file the in-process CLI gave instead of an S3Object
    principal: str = "local"  # who started it (the audit trail names them when it ends)


@dataclass(frozen=True)
class Job:
    job_id: str
    operation: str
    params: Mapping[str, Any]
    status: str  # QUEUED, IN_PROGRESS, SUCCEEDED or FAILED (QUEUED is IN_PROGRESS to callers)
    status_message: str | None
    progress: float  # 0-100
    attempts: int
    created_at: datetime
    video_metadata: Mapping[str, Any] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)  # response fields such as LabelModelVersion
    local_path: str | None = None
    fingerprint: str = ""
    principal: str = "local"


@dataclass(frozen=True)
class JobResult:
    """One item of a job's result list, with the keys its Get* operation sorts by."""

    timestamp: int  # ms
    sort_key: str  # the name, index or id SortBy orders by (besides TIMESTAMP)
    body: Mapping[str, Any]
    variant: str = ""  # "" or an aggregation such as SEGMENTS


class JobStore(Protocol):
    """Durable stored-video jobs: queued by Start*, leased by workers, read by Get*."""

    def create_job(self, job: NewJob, max_open: int) -> Job:
        """A new queued job, or the job already created with this client token (whatever its
        parameters: the caller compares fingerprints). Raises LimitExceededException when
        `max_open` jobs are already queued or in progress."""
        ...

    def get_job(self, job_id: str) -> Job:
        """Raises ResourceNotFoundException if there is no such job."""
        ...

    def claim_job(self, worker: str, lease_seconds: float, max_attempts: int, job_id: str | None = None) -> Job | None:
        """The oldest job (or the job `job_id`) that is queued or whose worker's lease ran out, now
        leased to `worker`; a job already tried `max_attempts` times is failed instead."""
        ...

    def renew_lease(self, job_id: str, worker: str, lease_seconds: float, progress: float) -> bool:
        """Extends the lease and records progress; False when `worker` no longer holds the job."""
        ...

    def release_jobs(self, workers: Sequence[str]) -> int:
        """Ends the leases of these (dead) workers at once, so their jobs are taken again."""
        ...

    def leased_workers(self) -> list[str]:
        """The workers holding jobs now."""
        ...

    def finish_job(
        self,
        job_id: str,
        worker: str,
        metadata: Mapping[str, Any],
        extras: Mapping[str, Any],
        results: Sequence[JobResult],
    ) -> bool:
        """SUCCEEDED with its results, atomically; False (and nothing written) if the lease was lost."""
        ...

    def fail_job(
        self, job_id: str, worker: str | None, message: str, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """FAILED with `message`; `worker` None fails it whoever holds it."""
        ...

    def job_results(self, job_id: str, variant: str, order: str, offset: int, limit: int) -> list[Mapping[str, Any]]:
        """Result bodies ordered by `order` (TIMESTAMP, or the sort key first), from `offset`."""
        ...

    def record_notification(self, job_id: str, destination: str, message: str, outcome: str) -> None:
        """Keeps a completion message sent (or not) to a notification channel."""
        ...

    def notifications(self, job_id: str) -> list[Mapping[str, Any]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class AuditRecord:
    """One biometric operation as the audit trail keeps it: who, what, on which collection, with
    which thresholds, and which face / user ids came back. Never an image or a vector."""

    principal: str
    request_id: str
    operation: str
    collection_id: str | None
    outcome: str  # "ok", or the error code the caller got
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: float  # seconds since the epoch
    record: AuditRecord
    hash: str  # SHA-256 chaining this entry to the one before


@dataclass(frozen=True)
class AuditQuery:
    after_seq: int = 0
    limit: int = 1000
    since: float | None = None
    principal: str | None = None
    operation: str | None = None
    collection_id: str | None = None


@dataclass(frozen=True)
class AuditVerification:
    intact: bool
    entries: int  # entries checked (up to the first broken one)
    head_hash: str  # the last good hash: keep it elsewhere to detect entries removed from the end
    broken_at: int | None  # seq of the first entry that does not chain


class AuditLog(Protocol):
    """The append-only, hash-chained record of biometric operations."""

    def append(self, record: AuditRecord) -> AuditEntry: ...

    def entries(self, query: AuditQuery) -> list[AuditEntry]: ...

    def verify(self) -> AuditVerification: ...

    def close(self) -> None: ...


class FaceStore(Protocol):
    """Collections of face vectors with users, tags and request idempotency."""

    # --- collections ------------------------------------------------------------------------------
    def create_collection(self, collection_id: str, face_model_version: str, tags: Mapping[str, str]) -> Collection:
        """Raises ResourceAlreadyExistsException if it exists."""
        ...

    def get_collection(self, collection_id: str) -> Collection:
        """Raises ResourceNotFoundException if it does not exist."""
        ...

    def list_collections(self, after: str | None, limit: int) -> list[Collection]:
        """Collections ordered by id, starting after the id `after` (keyset pagination). Internal
        collections, whose ids hold a ':' that Rekognition's CollectionId pattern forbids, are
        left out: the API can neither name nor list them."""
        ...

    def delete_collection(self, collection_id: str) -> None:
        """Removes the collection with every face, vector, user and tag in it."""
        ...

    def tag_collection(self, collection_id: str, tags: Mapping[str, str]) -> None: ...

    def untag_collection(self, collection_id: str, keys: Sequence[str]) -> None: ...

    # --- faces ------------------------------------------------------------------------------------
    def add_faces(self, collection_id: str, faces: Sequence[NewFace]) -> list[Face]:
        """Adds the faces atomically, each with a new FaceId (a UUID); durable once returned."""
        ...

    def faces_of_image(self, collection_id: str, image_id: str, external_image_id: str | None) -> list[Face]:
        """Faces already indexed from this image with this external id (to avoid duplicates)."""
        ...

    def list_faces(
        self,
        collection_id: str,
        after: str | None,
        limit: int,
        user_id: str | None = None,
        face_ids: Sequence[str] | None = None,
    ) -> list[Face]:
        """Faces ordered by FaceId after `after`, optionally only a user's or only given ids."""
        ...

    def get_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[Face]:
        """The faces among `face_ids` that exist, in no particular order."""
        ...

    def face_vector(self, collection_id: str, face_id: str) -> NDArray[np.float32]:
        """Raises ResourceNotFoundException if the face does not exist."""
        ...

    def delete_faces(self, collection_id: str, face_ids: Sequence[str]) -> list[str]:
        """Deletes those of `face_ids` that exist and belong to no user; returns their ids.
        Their vectors are erased from the database and the index before this returns."""
        ...

    def search(
        self, collection_id: str, vector: NDArray[np.float32], limit: int, max_distance: float
    ) -> list[Neighbour]:
        """Up to `limit` faces within `max_distance` of `vector`, nearest first."""
        ...

    # --- users ------------------------------------------------------------------------------------
    def create_user(self, collection_id: str, user_id: str) -> User:
        """Raises ConflictException if the user exists."""
        ...

    def delete_user(self, collection_id: str, user_id: str) -> None:
        """Deletes the user and disassociates its faces. Raises ResourceNotFoundException."""
        ...

    def get_user(self, collection_id: str, user_id: str) -> User:
        """Raises ResourceNotFoundException if the user does not exist."""
        ...

    def list_users(self, collection_id: str, after: str | None, limit: int) -> list[User]: ...

    def associate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        """Sets the user of those faces that exist and have no user; returns their ids."""
        ...

    def disassociate_faces(self, collection_id: str, user_id: str, face_ids: Sequence[str]) -> list[str]:
        """Clears the user of those faces that belong to `user_id`; returns their ids."""
        ...

    # --- the celebrity gallery's people -----------------------------------------------------------
    def put_celebrity(self, celebrity: Celebrity) -> None:
        """Adds the celebrity, or replaces the one with its id."""
        ...

    def get_celebrity(self, celebrity_id: str) -> Celebrity:
        """Raises ResourceNotFoundException if there is no such celebrity."""
        ...

    def list_celebrities(self) -> list[Celebrity]:
        """Every celebrity, ordered by id."""
        ...

    def delete_celebrity(self, celebrity_id: str) -> None:
        """Removes the celebrity's record (not its faces); a missing one is no error."""
        ...

    # --- idempotency ------------------------------------------------------------------------------
    def recall_request(self, token: str, operation: str) -> tuple[str, dict[str, Any]] | None:
        """(fingerprint, response) stored for this client request token, if any."""
        ...

    def remember_request(self, token: str, operation: str, fingerprint: str, response: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
