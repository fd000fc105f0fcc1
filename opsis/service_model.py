"""botocore's own Rekognition model: the source of every shape, constraint and error name."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore.model import ServiceModel


@cache
def service_model() -> ServiceModel:
    """The Rekognition service model that ships with botocore."""
    return botocore.session.get_session().get_service_model("rekognition")


@cache
def shape_members(shape_name: str) -> frozenset[str]:
    """Member names of a structure shape, e.g. the fields a `ComparedFace` may carry."""
    return frozenset(service_model().shape_for(shape_name).members)
