"""Maps (task, model name) to the runner that implements it."""

from __future__ import annotations

from opsis.vision.cache import ModelCache
from opsis.vision.runners.base import FaceDetector

FACE_DETECTORS = ("retinaface-mnet025",)


def face_detector(cache: ModelCache, name: str, threads: int) -> FaceDetector:
    """The named face detector, loaded once per process."""
    match name:
        case "retinaface-mnet025":
            from opsis.vision.runners.retinaface import RetinaFaceDetector

            return cache.get("face-detector", name, lambda: RetinaFaceDetector(threads=threads))
        case _:
            raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(FACE_DETECTORS)}")
