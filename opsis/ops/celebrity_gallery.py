"""The operator's celebrity gallery: import, list and remove the people RecognizeCelebrities names.

Opsis ships no gallery of real people. An operator builds one in a directory holding a manifest,
`celebrities.csv` or `celebrities.json`, and face photos:

    gallery/
      celebrities.csv
      photos/ada-lovelace/1.jpg, 2.jpg ...

    name,id,urls,known_gender,photos
    Ada Lovelace,ada1815,https://en.wikipedia.org/wiki/Ada_Lovelace,Female,photos/ada-lovelace

* `name` (required) is returned as `Name`.
* `id` is returned as `Id` and looked up by GetCelebrityInfo: letters and digits, at most 64. Left
  empty, it is the first 12 hex digits of SHA-256 of the name, so importing the same manifest
  again keeps every Id.
* `urls`: up to 255 addresses separated by spaces (JSON: a list), returned as `Urls`.
* `known_gender`: Male, Female, Nonbinary or Unlisted, or empty (then no `KnownGender`).
* `photos` (required): paths relative to the gallery directory, separated by ';' (JSON: a list),
  each a JPEG/PNG photo or a folder whose .jpg/.jpeg/.png files are all used.

The JSON manifest is a list of objects with the same keys. Each photo should show the person
alone: its largest face is used, if it passes QualityFilter AUTO (as IndexFaces); a few sharp,
frontal photos taken years apart recognise best. Photos are not kept, only a 128-number vector per
face. Importing a celebrity again replaces their record and faces; people not in the manifest stay.

Rights and consent: a face vector is biometric data. Enrol only people who have agreed to it or
whose recognition your jurisdiction allows (public figures in their public role, for instance),
use photos you have the right to use, and honour removal requests with `opsis celebrities remove`,
which erases the vectors as DeleteFaces does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opsis.errors import InvalidParameterException, OpsisError, ResourceNotFoundException
from opsis.ops.celebrities import GALLERY_COLLECTION, gallery_collection
from opsis.ops.context import Context
from opsis.ops.images import decode_checked
from opsis.ops.quality_filter import quality_reasons
from opsis.ops.shapes import bounding_box
from opsis.service_model import shape_enum
from opsis.store.base import Celebrity, NewFace
from opsis.vision.faces import analyze, embed_faces

MANIFESTS = ("celebrities.csv", "celebrities.json")
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# The model's RekognitionUniqueId pattern is [0-9A-Za-z]*; the length bound is ours.
CELEBRITY_ID = re.compile(r"[0-9A-Za-z]{1,64}")
KNOWN_GENDERS = shape_enum("KnownGenderType")
MAX_URLS = 255  # the model's Urls list
GALLERY_QUALITY = "AUTO"
PAGE = 4096


@dataclass(frozen=True)
class GalleryEntry:
    """One manifest row: who, and the photos to enrol them with."""

    celebrity: Celebrity
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class ImportedCelebrity:
    celebrity: Celebrity
    faces: int
    skipped: tuple[tuple[Path, str], ...]  # photo, why it gave no face


def import_gallery(ctx: Context, directory: Path) -> list[ImportedCelebrity]:
    """Enrol everyone in the directory's manifest (replacing earlier imports of the same Ids)."""
    entries = read_manifest(directory)
    ensure_gallery(ctx)
    old_faces = face_ids_by_celebrity(ctx)
    return [enrol(ctx, entry, old_faces.get(entry.celebrity.celebrity_id, [])) for entry in entries]


def list_gallery(ctx: Context) -> list[tuple[Celebrity, int]]:
    """Every celebrity with their number of gallery faces."""
    faces = face_ids_by_celebrity(ctx)
    return [(celebrity, len(faces.get(celebrity.celebrity_id, []))) for celebrity in ctx.store.list_celebrities()]


def remove_celebrities(ctx: Context, celebrity_ids: Sequence[str]) -> None:
    """Erase the celebrities' records and face vectors; an unknown Id is an error, before anything
    is removed."""
    for celebrity_id in celebrity_ids:
        ctx.store.get_celebrity(celebrity_id)
    faces = face_ids_by_celebrity(ctx)
    for celebrity_id in celebrity_ids:
        if faces.get(celebrity_id):
            ctx.store.delete_faces(GALLERY_COLLECTION, faces[celebrity_id])
        ctx.store.delete_celebrity(celebrity_id)


def remove_gallery(ctx: Context) -> int:
    """Erase the whole gallery; returns how many celebrities it held."""
    celebrities = ctx.store.list_celebrities()
    with suppress(ResourceNotFoundException):  # nothing was ever imported
        ctx.store.delete_collection(GALLERY_COLLECTION)
    for celebrity in celebrities:
        ctx.store.delete_celebrity(celebrity.celebrity_id)
    return len(celebrities)


# --- the manifest ----------------------------------------------------------------------------------


def read_manifest(directory: Path) -> list[GalleryEntry]:
    """The gallery's entries, every row checked before anything is enrolled."""
    found = [directory / name for name in MANIFESTS if (directory / name).is_file()]
    if len(found) != 1:
        raise InvalidParameterException(f"{directory} must hold exactly one of {' or '.join(MANIFESTS)}")
    manifest = found[0]
    rows = _json_rows(manifest) if manifest.suffix == ".json" else _csv_rows(manifest)
    entries = [_entry(directory, row, f"{manifest.name} entry {number}") for number, row in enumerate(rows, 1)]
    ids = [entry.celebrity.celebrity_id for entry in entries]
    duplicates = sorted({celebrity_id for celebrity_id in ids if ids.count(celebrity_id) > 1})
    if duplicates:
        raise InvalidParameterException(f"{manifest.name} gives several people the Id {', '.join(duplicates)}")
    return entries


def _csv_rows(manifest: Path) -> list[dict[str, Any]]:
    with manifest.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def _json_rows(manifest: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InvalidParameterException(f"{manifest.name} is not valid JSON: {error}") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise InvalidParameterException(f"{manifest.name} must be a list of objects")
    return rows


def _listed(value: Any, separator: str | None) -> list[str]:
    """A manifest list: a JSON list as it is, a string (a CSV cell) split at `separator`
    (None: at white space)."""
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip() for part in str(value or "").split(separator) if part.strip()]


def _entry(directory: Path, row: dict[str, Any], where: str) -> GalleryEntry:
    name = str(row.get("name") or "").strip()
    if not name:
        raise InvalidParameterException(f"{where}: name is required")
    celebrity_id = str(row.get("id") or "").strip() or default_id(name)
    if not CELEBRITY_ID.fullmatch(celebrity_id):
        raise InvalidParameterException(f"{where}: id {celebrity_id!r} must be 1-64 letters and digits")
    gender = str(row.get("known_gender") or "").strip() or None
    if gender is not None and gender not in KNOWN_GENDERS:
        raise InvalidParameterException(f"{where}: known_gender must be one of {', '.join(KNOWN_GENDERS)} or empty")
    urls = tuple(_listed(row.get("urls"), None))
    if len(urls) > MAX_URLS:
        raise InvalidParameterException(f"{where}: at most {MAX_URLS} urls")
    photos = _photos(directory, _listed(row.get("photos"), ";"), where)
    return GalleryEntry(Celebrity(celebrity_id, name, urls, gender), photos)


def default_id(name: str) -> str:
    """A stable Id for a name: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]


def _photos(directory: Path, paths: Iterable[str], where: str) -> tuple[Path, ...]:
    photos: list[Path] = []
    for relative in paths:
        path = directory / relative
        if path.is_dir():
            photos.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES))
        elif path.is_file():
            photos.append(path)
        else:
            raise InvalidParameterException(f"{where}: photo path {relative!r} does not exist")
    if not photos:
        raise InvalidParameterException(f"{where}: photos names no JPEG or PNG file")
    return tuple(dict.fromkeys(photos))


# --- enrolment -------------------------------------------------------------------------------------


def ensure_gallery(ctx: Context) -> None:
    """Create the gallery's collection on the first import."""
    if gallery_collection(ctx) is None:
        ctx.store.create_collection(GALLERY_COLLECTION, ctx.face_embedder().version, {})


def enrol(ctx: Context, entry: GalleryEntry, old_face_ids: list[str]) -> ImportedCelebrity:
    """Record the celebrity, add the new faces, then drop the faces of an earlier import."""
    celebrity_id = entry.celebrity.celebrity_id
    faces: list[NewFace] = []
    skipped: list[tuple[Path, str]] = []
    for photo in entry.photos:
        try:
            faces.append(gallery_face(ctx, photo, celebrity_id))
        except (OpsisError, OSError) as error:
            skipped.append((photo, getattr(error, "message", None) or str(error)))
    ctx.store.put_celebrity(entry.celebrity)
    ctx.store.add_faces(GALLERY_COLLECTION, faces)
    if old_face_ids:
        ctx.store.delete_faces(GALLERY_COLLECTION, old_face_ids)
    return ImportedCelebrity(entry.celebrity, len(faces), tuple(skipped))


def gallery_face(ctx: Context, photo: Path, celebrity_id: str) -> NewFace:
    """The largest face of a photo, embedded; the face's ExternalImageId is the celebrity's Id."""
    data = photo.read_bytes()
    image = decode_checked(data, str(photo.name))
    face = analyze(image, ctx.face_detector(), max_faces=1)
    if len(face) == 0:
        raise InvalidParameterException("no face found")
    reasons = quality_reasons(face, GALLERY_QUALITY)[0]
    if reasons:
        raise InvalidParameterException(f"face below QualityFilter {GALLERY_QUALITY}: {', '.join(reasons)}")
    vector = embed_faces(image, face, ctx.face_embedder()).data["embedding"][0]
    box = bounding_box(face.xyxy[0], image.width, image.height)
    return NewFace(
        image_id=str(uuid.UUID(bytes=hashlib.sha256(data).digest()[:16], version=4)),
        external_image_id=celebrity_id,
        bounding_box=(box["Width"], box["Height"], box["Left"], box["Top"]),
        confidence=float(face.confidence[0]) * 100.0,
        vector=np.asarray(vector, np.float32),
    )


def face_ids_by_celebrity(ctx: Context) -> dict[str, list[str]]:
    """The gallery's FaceIds grouped by celebrity Id (a full scan: galleries are small)."""
    try:
        ctx.store.get_collection(GALLERY_COLLECTION)
    except ResourceNotFoundException:
        return {}
    grouped: dict[str, list[str]] = {}
    after: str | None = None
    while True:
        faces = ctx.store.list_faces(GALLERY_COLLECTION, after, PAGE)
        for face in faces:
            grouped.setdefault(face.external_image_id or "", []).append(face.face_id)
        if len(faces) < PAGE:
            return grouped
        after = faces[-1].face_id
