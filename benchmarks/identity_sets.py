"""The shared identity sets (faces/identities/*/labels.csv), embedded through Opsis's face pipeline.

Used by the similarity calibration and the identity benchmark. Each photo contributes its largest
face, as CompareFaces does with a source image. Embeddings are cached under benchmarks/results/
keyed by the data root and the model version, so repeated runs skip the slow part.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from opsis.vision.faces import find_faces, largest
from opsis.vision.image import decode_image
from opsis.vision.runners.dlib_resnet import DlibResNetEmbedder
from opsis.vision.runners.retinaface import RetinaFaceDetector

SETS = ("celeba", "deepface", "dlib_johns", "face_recognition")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class IdentitySet:
    name: str
    paths: list[str]  # relative to the data root
    identities: NDArray[np.str_]
    vectors: NDArray[np.float32]  # (n, d); rows of photos where no face was found are NaN

    @property
    def found(self) -> NDArray[np.bool_]:
        return ~np.isnan(self.vectors[:, 0])


def load_identity_sets(data_root: Path, cache_dir: Path) -> list[IdentitySet]:
    """Every identity set present under `data_root`, embedded (or read from the cache)."""
    detector = RetinaFaceDetector(threads=2)
    embedder = DlibResNetEmbedder(cache_dir, threads=2)
    sets = []
    for name in SETS:
        labels = data_root / "faces" / "identities" / name / "labels.csv"
        if labels.exists():
            sets.append(_load(name, labels, data_root, detector, embedder))
    return sets


def _load(
    name: str, labels: Path, root: Path, detector: RetinaFaceDetector, embedder: DlibResNetEmbedder
) -> IdentitySet:
    with labels.open() as file:
        rows = list(csv.DictReader(file))
    paths = [row["path"] for row in rows]
    key = hashlib.sha256(f"{root.resolve()}|{embedder.version}|{'|'.join(paths)}".encode()).hexdigest()[:16]
    cached = RESULTS / f"embeddings-{name}-{key}.npy"
    if cached.exists():
        vectors = np.load(cached)
    else:
        vectors = np.stack([_embed(root / path, detector, embedder) for path in paths])
        RESULTS.mkdir(exist_ok=True)
        np.save(cached, vectors)
    return IdentitySet(name, paths, np.array([row["identity"] for row in rows]), vectors)


def _embed(path: Path, detector: RetinaFaceDetector, embedder: DlibResNetEmbedder) -> NDArray[np.float32]:
    image = decode_image(path.read_bytes())
    face = largest(find_faces(image, detector), 1)
    if len(face) == 0:
        return np.full(embedder.dimension, np.nan, np.float32)
    vector: NDArray[np.float32] = embedder.embed(image.pixels, face)[0]
    return vector


def pair_distances(identity_set: IdentitySet) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(genuine, impostor) distances over every pair of photos with a face, within the set."""
    found = identity_set.found
    vectors = identity_set.vectors[found].astype(np.float64)
    labels = identity_set.identities[found]
    upper = np.triu_indices(len(vectors), 1)
    squared = np.square(vectors).sum(axis=1)  # |a-b|^2 = |a|^2 + |b|^2 - 2ab: an n x n matrix, not n x n x d
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None] - 2 * vectors @ vectors.T, 0))[upper]
    same = (labels[:, None] == labels[None])[upper]
    return distances[same], distances[~same]
