"""botocore's own Rekognition model: the source of every shape, constraint and error name."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel

from opsis.errors import UnknownOperationException


@cache
def service_model() -> ServiceModel:
    """The Rekognition service model that ships with botocore."""
    return botocore.session.get_session().get_service_model("rekognition")


def operation_model(name: str) -> OperationModel:
    """The model of the operation `name` (e.g. "DetectFaces"); UnknownOperationException if none."""
    try:
        return service_model().operation_model(name)
    except OperationNotFoundError:
        raise UnknownOperationException(f"Unknown operation {name!r}") from None


@cache
def shape_members(shape_name: str) -> frozenset[str]:
    """Member names of a structure shape, e.g. the fields a `ComparedFace` may carry."""
    return frozenset(service_model().shape_for(shape_name).members)


@cache
def shape_enum(shape_name: str) -> tuple[str, ...]:
    """Values of an enum shape in the model's order, e.g. the 30 landmark types."""
    return tuple(service_model().shape_for(shape_name).enum)
