"""Rekognition's 0-100 `Similarity` from embedding distance, calibrated on real identity data.

A similarity is pinned to a false-match rate: on the calibration impostor pairs, a threshold of 80
lets through 1 in 100 impostors, 90 one in 1,000, 95 one in 10,000 and 99 one in 100,000 (the
distances at those rates come from `benchmarks/calibrate_similarity.py`, which writes the JSON
beside this module). Between anchors the mapping is linear in distance, so it is monotone and
invertible: a threshold becomes a search radius.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document


@dataclass(frozen=True)
class SimilarityScale:
    """Piecewise-linear map from distance (increasing) to similarity (decreasing, 100 at 0)."""

    model_version: str
    distances: tuple[float, ...]
    similarities: tuple[float, ...]

    def __post_init__(self) -> None:
        if list(self.distances) != sorted(self.distances) or list(self.similarities) != sorted(
            self.similarities, reverse=True
        ):
            raise ValueError("calibration anchors must be monotone")

    def similarity(self, distance: NDArray[np.float32] | float) -> NDArray[np.float64]:
        """Similarity 0-100 of one or more distances."""
        values = np.interp(np.asarray(distance, np.float64), self.distances, self.similarities)
        return np.asarray(values, np.float64)

    def max_distance(self, similarity: float) -> float:
        """The largest distance whose similarity is still at least `similarity`."""
        reversed_similarities = self.similarities[::-1]
        return float(np.interp(similarity, reversed_similarities, self.distances[::-1]))


@cache
def similarity_scale(model_version: str) -> SimilarityScale:
    """The shipped calibration of an embedding model."""
    anchors = calibration_document(model_version)["anchors"]
    return SimilarityScale(
        model_version=model_version,
        distances=tuple(float(distance) for distance, _ in anchors),
        similarities=tuple(float(similarity) for _, similarity in anchors),
    )
