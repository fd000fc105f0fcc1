"""Opsis: self-hosted image analysis that speaks Amazon Rekognition's API.

The Python API calls the same operation handlers as the HTTP server, in-process, with the same
model-driven validation::

    from opsis import Opsis
    opsis = Opsis()
    opsis.detect_faces("group.jpg", attributes=("ALL",))["FaceDetails"]
    opsis.detect_labels("street.jpg", MinConfidence=40)["Labels"]
    opsis.call("DetectFaces", {"Image": {"S3Object": {"Bucket": "photos", "Name": "a.jpg"}}})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsis.config import Settings

__all__ = ["Opsis", "Settings"]
__version__ = "0.1.0"


class Opsis:
    """An in-process Rekognition: parameters and results are exactly the API's."""

    def __init__(self, settings: Settings | None = None) -> None:
        from opsis.ops.context import Context

        self.ctx = Context.create(settings or Settings.load())

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Opsis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a Rekognition operation by name (e.g. "DetectFaces") with its request parameters."""
        from opsis.api.validate import validate_input
        from opsis.ops.registry import handler_for
        from opsis.service_model import operation_model

        model = operation_model(operation)
        validate_input(model.input_shape, params)
        return dict(handler_for(model.name)(self.ctx, params))

    def detect_faces(self, image: bytes | str | Path, attributes: tuple[str, ...] = ("DEFAULT",)) -> dict[str, Any]:
        """DetectFaces on image bytes or a JPEG/PNG file path."""
        return self.call("DetectFaces", {"Image": _image(image), "Attributes": list(attributes)})

    def detect_labels(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectLabels; further parameters (MinConfidence, Features, ...) as the API names them."""
        return self.call("DetectLabels", {"Image": _image(image), **params})

    def detect_text(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectText; further parameters (Filters) as the API names them."""
        return self.call("DetectText", {"Image": _image(image), **params})

    def detect_moderation_labels(self, image: bytes | str | Path, **params: Any) -> dict[str, Any]:
        """DetectModerationLabels; further parameters (MinConfidence) as the API names them."""
        return self.call("DetectModerationLabels", {"Image": _image(image), **params})

    def recognize_celebrities(self, image: bytes | str | Path) -> dict[str, Any]:
        """RecognizeCelebrities against the gallery imported with `opsis celebrities import`."""
        return self.call("RecognizeCelebrities", {"Image": _image(image)})


def _image(image: bytes | str | Path) -> dict[str, bytes]:
    """An `Image` from bytes or a JPEG/PNG file path."""
    return {"Bytes": image if isinstance(image, bytes) else Path(image).read_bytes()}
