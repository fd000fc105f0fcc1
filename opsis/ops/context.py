"""The one object every operation handler receives: settings, models and storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from opsis.config import Settings
from opsis.store import open_audit_log, open_face_store, open_job_store
from opsis.store.base import AuditLog, FaceStore, JobStore, ObjectSource
from opsis.store.objects import object_source
from opsis.vision import registry
from opsis.vision.cache import ModelCache
from opsis.vision.runners.base import (
    ContentModerator,
    EquipmentClassifier,
    FaceAttributes,
    FaceDetector,
    FaceEmbedder,
    ObjectDetector,
    PoseEstimator,
    TextReader,
)
from opsis.vision.similarity import SimilarityScale, similarity_scale


@dataclass
class Context:
    """Built once at start-up (server, CLI or Python API) and passed to every handler."""

    settings: Settings
    objects: ObjectSource
    models: ModelCache = field(default_factory=ModelCache)
    _store: FaceStore | None = None
    _jobs: JobStore | None = None
    _audit: AuditLog | None = None
    _store_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, settings: Settings) -> Context:
        return cls(settings=settings, objects=object_source(settings))

    @property
    def store(self) -> FaceStore:
        """The face store, opened on first use (so DetectFaces alone never creates one)."""
        with self._store_lock:
            if self._store is None:
                self._store = open_face_store(self.settings)
            return self._store

    @property
    def jobs(self) -> JobStore:
        """The stored-video job store, opened on first use."""
        with self._store_lock:
            if self._jobs is None:
                self._jobs = open_job_store(self.settings)
            return self._jobs

    @property
    def audit(self) -> AuditLog:
        """The audit trail of biometric operations, opened on first use."""
        with self._store_lock:
            if self._audit is None:
                self._audit = open_audit_log(self.settings)
            return self._audit

    def collection_arn(self, collection_id: str) -> str:
        return f"arn:aws:rekognition:{self.settings.region}:{self.settings.account_id}:collection/{collection_id}"

    def face_detector(self) -> FaceDetector:
        return registry.face_detector(self.models, self.settings.face_detector, self.settings.model_threads)

    def face_embedder(self) -> FaceEmbedder:
        settings = self.settings
        return registry.face_embedder(
            self.models, settings.face_embedder, settings.model_threads, settings.model_cache_dir
        )

    def face_attributes(self, name: str) -> FaceAttributes:
        return registry.face_attributes(self.models, name, self.settings.model_threads)

    def equipment_classifier(self, name: str) -> EquipmentClassifier:
        return registry.equipment_classifier(self.models, name, self.settings.model_threads)

    def content_moderator(self) -> ContentModerator:
        return registry.content_moderator(self.models, self.settings.content_moderator, self.settings.model_threads)

    def text_reader(self) -> TextReader:
        return registry.text_reader(self.models, self.settings.text_reader, self.settings.model_threads)

    def object_detector(self) -> ObjectDetector:
        settings = self.settings
        return registry.object_detector(
            self.models, settings.object_detector, settings.model_threads, settings.model_cache_dir
        )

    def pose_estimator(self) -> PoseEstimator:
        settings = self.settings
        return registry.pose_estimator(
            self.models, settings.pose_estimator, settings.model_threads, settings.model_cache_dir
        )

    def similarity(self, model_version: str) -> SimilarityScale:
        """Distance -> Similarity for vectors of this embedding model version."""
        return similarity_scale(model_version)

    def close(self) -> None:
        """Flush and close storage (saves vector indexes so the next start need not rebuild them)."""
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._jobs is not None:
                self._jobs.close()
                self._jobs = None
            if self._audit is not None:
                self._audit.close()
                self._audit = None

    def prepare_models(self) -> None:
        """Fetch and convert what the models need (the set-up step, which may use the network), then load them."""
        registry.prepare_model_files(self.settings.model_cache_dir)
        self.warm_up()

    def warm_up(self) -> None:
        """Load the models now, so the first request does not pay for it."""
        self.face_detector()
        self.face_embedder()
        for name in registry.FACE_ATTRIBUTES:
            self.face_attributes(name)
        for name in registry.EQUIPMENT_CLASSIFIERS:
            self.equipment_classifier(name)
        self.content_moderator()
        self.text_reader()
        self.object_detector()
        self.pose_estimator()
