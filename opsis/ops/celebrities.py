"""RecognizeCelebrities and GetCelebrityInfo, against the celebrity gallery the operator imports.

Opsis ships no gallery of real people: `opsis celebrities import` (opsis.ops.celebrity_gallery)
fills one. Its faces are vectors in the internal collection GALLERY_COLLECTION, each tagged with
its celebrity's Id; names, URLs and known gender are the store's celebrity records. With no
gallery, every face is unrecognised.

A face is a celebrity when its nearest gallery face has Similarity >= MATCH_THRESHOLD (99). The
Similarity scale pins 99 to a false-match rate of 1e-5 per comparison (README, "Similarity"), and
a stranger is compared with every gallery face: at 99 a gallery of 1,000 faces falsely names about
1 stranger in 100, at 95 (1e-4) about 1 in 10. The price is recall: with the shared identity sets,
one gallery photo per person, 40% of other photos of enrolled people are named at 99, against 48%
at 95 and 91% at 80 (benchmarks/recognize_celebrities.py). `MatchConfidence` is that Similarity.
Each celebrity is named at most once per image, on the face most similar to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsis.errors import InvalidParameterException, ResourceNotFoundException
from opsis.ops.context import Context
from opsis.ops.face_attributes import COMPARED_FACE_ATTRIBUTES, describe_faces
from opsis.ops.images import load_image
from opsis.ops.shapes import compared_face
from opsis.store.base import Celebrity, Collection
from opsis.vision.faces import analyze, embed_faces
from opsis.vision.types import DecodedImage, Detections

if TYPE_CHECKING:
    from mypy_boto3_rekognition.type_defs import (
        CelebrityTypeDef,
        ComparedFaceTypeDef,
        GetCelebrityInfoResponseTypeDef,
        RecognizeCelebritiesResponseTypeDef,
    )

# Rekognition: "RecognizeCelebrities returns the 64 largest faces in the image."
MAX_FACES = 64
# The CollectionId pattern [a-zA-Z0-9_.\-]+ has no ':', so the API can never name this collection.
GALLERY_COLLECTION = "opsis:celebrities"
MATCH_THRESHOLD = 99.0


@dataclass(frozen=True)
class Match:
    row: int  # the face's row in the image's Detections
    celebrity: Celebrity
    similarity: float


def recognize_celebrities(ctx: Context, params: dict[str, Any]) -> RecognizeCelebritiesResponseTypeDef:
    """RecognizeCelebrities: the 64 largest faces, largest first, split into the gallery's
    celebrities and the unrecognised rest."""
    return celebrities_in_image(ctx, load_image(ctx, params["Image"]))


def celebrities_in_image(ctx: Context, image: DecodedImage) -> RecognizeCelebritiesResponseTypeDef:
    """RecognizeCelebrities' response for a decoded image (a photo or a video frame)."""
    faces = analyze(image, ctx.face_detector(), MAX_FACES)
    matches = {match.row: match for match in identify(ctx, image, faces)}
    faces = describe_faces(ctx, image, faces, COMPARED_FACE_ATTRIBUTES)
    compared = [
        compared_face(faces, row, image.width, image.height, COMPARED_FACE_ATTRIBUTES) for row in range(len(faces))
    ]
    return {
        "CelebrityFaces": [celebrity_face(matches[row], face) for row, face in enumerate(compared) if row in matches],
        "UnrecognizedFaces": [face for row, face in enumerate(compared) if row not in matches],
    }  # type: ignore[typeddict-item]


def get_celebrity_info(ctx: Context, params: dict[str, Any]) -> GetCelebrityInfoResponseTypeDef:
    """GetCelebrityInfo: Name, Urls and KnownGender of a gallery celebrity by Id."""
    return celebrity_info(ctx.store.get_celebrity(params["Id"]))  # type: ignore[return-value]


def celebrity_face(match: Match, face: ComparedFaceTypeDef) -> CelebrityTypeDef:
    """A `Celebrity` of RecognizeCelebrities: who, where, and how similar to their gallery face."""
    return {
        **celebrity_info(match.celebrity),
        "Id": match.celebrity.celebrity_id,
        "Face": face,
        "MatchConfidence": match.similarity,
    }


def celebrity_info(celebrity: Celebrity) -> CelebrityTypeDef:
    info: CelebrityTypeDef = {"Name": celebrity.name, "Urls": list(celebrity.urls)}
    if celebrity.known_gender is not None:
        info["KnownGender"] = {"Type": celebrity.known_gender}  # type: ignore[typeddict-item]
    return info


def identify(ctx: Context, image: DecodedImage, faces: Detections) -> list[Match]:
    """The faces that are gallery celebrities: each face's nearest gallery face, if within
    MATCH_THRESHOLD, and each celebrity only on its most similar face."""
    gallery = gallery_collection(ctx)
    if gallery is None or len(faces) == 0:
        return []
    scale = ctx.similarity(gallery.face_model_version)
    vectors = embed_faces(image, faces, ctx.face_embedder()).data["embedding"]
    candidates = []
    for row, vector in enumerate(vectors):
        nearest = ctx.store.search(gallery.collection_id, vector, 1, scale.max_distance(MATCH_THRESHOLD))
        if nearest and nearest[0].face.external_image_id is not None:
            similarity = float(scale.similarity(nearest[0].distance))
            candidates.append((similarity, row, nearest[0].face.external_image_id))
    matches: dict[str, Match] = {}
    for similarity, row, celebrity_id in sorted(candidates, key=lambda c: -c[0]):
        celebrity = _known(ctx, celebrity_id)
        if celebrity is not None and celebrity_id not in matches and similarity >= MATCH_THRESHOLD:
            matches[celebrity_id] = Match(row, celebrity, similarity)
    return list(matches.values())


def gallery_collection(ctx: Context) -> Collection | None:
    """The gallery's collection, or None when nothing was imported. Its vectors must come from
    the embedder this server runs: distances between two models' vectors mean nothing."""
    try:
        gallery = ctx.store.get_collection(GALLERY_COLLECTION)
    except ResourceNotFoundException:
        return None
    version = ctx.face_embedder().version
    if gallery.face_model_version != version:
        raise InvalidParameterException(
            f"The celebrity gallery holds {gallery.face_model_version} vectors and this server embeds with "
            f"{version}; the operator must remove it (opsis celebrities remove --all) and import it again"
        )
    return gallery


def _known(ctx: Context, celebrity_id: str) -> Celebrity | None:
    """The celebrity's record; None for faces left by an import that stopped half way."""
    try:
        return ctx.store.get_celebrity(celebrity_id)
    except ResourceNotFoundException:
        return None
