"""RecognizeCelebrities benchmark: identification with a gallery built from the shared identity sets.

Every identity of faces/identities/* (namespaced by set) is either enrolled or a stranger: sorted
by name, every STRANGER_EVERY-th is a stranger. Each enrolled identity goes into a gallery with
one photo, its first photo in labels.csv where the pipeline finds a face; `opsis celebrities
import` (in-process, on the data directory of a live `opsis serve`) enrols it. Then, through boto3:

1. Probes: every other photo of an enrolled identity. The labelled person is the photo's largest
   face (as in the sets' README): "hit" when RecognizeCelebrities names it with the right Id,
   "wrong" when it names it as someone else, "unrecognised" otherwise. Names given to other faces
   of the photo (bystanders) are counted apart.
2. Strangers: every photo of a stranger; a name on its largest face is a false match.
3. The same split scored offline at Similarity 80 / 90 / 95 / 99 (nearest gallery face of each
   photo's largest-face vector, `identity_sets`), to show what RecognizeCelebrities' fixed
   threshold (99) costs and buys.
4. Speed: RecognizeCelebrities p50/p95 over every probe and stranger photo (each sent once, after a
   warm-up), GetCelebrityInfo p50/p95, and the import's faces per second; `uptime` at start and end.

    .venv/bin/python benchmarks/recognize_celebrities.py [--data ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from common import argument_parser, client, percentiles, server, timed, uptime
from identity_sets import RESULTS, load_identity_sets
from rich.console import Console
from rich.table import Table

from opsis import Opsis
from opsis.config import Settings
from opsis.ops.celebrities import MATCH_THRESHOLD
from opsis.ops.celebrity_gallery import default_id, import_gallery
from opsis.vision.runners.dlib_resnet import DlibResNetEmbedder
from opsis.vision.similarity import similarity_scale

STRANGER_EVERY = 4
THRESHOLDS = (80.0, 90.0, 95.0, 99.0)
QUICK_PHOTOS = 80
console = Console(width=150)


@dataclass(frozen=True)
class Photo:
    path: str  # relative to the data root
    identity: str  # "<set>/<identity>"
    has_face: bool  # the pipeline finds a face (identity_sets' largest-face vectors)
    vector: np.ndarray


@dataclass(frozen=True)
class Split:
    gallery: dict[str, Photo]  # identity -> its enrolment photo
    probes: list[Photo]
    strangers: list[Photo]


def load_photos(data: Path, cache_dir: Path) -> list[Photo]:
    photos = []
    for identity_set in load_identity_sets(data, cache_dir):
        for path, identity, vector, found in zip(
            identity_set.paths, identity_set.identities, identity_set.vectors, identity_set.found, strict=True
        ):
            photos.append(Photo(path, f"{identity_set.name}/{identity}", bool(found), vector))
    return photos


def split(photos: list[Photo]) -> Split:
    identities = sorted({photo.identity for photo in photos})
    strangers = set(identities[STRANGER_EVERY - 1 :: STRANGER_EVERY])
    gallery: dict[str, Photo] = {}
    for photo in photos:
        if photo.identity not in strangers and photo.has_face and photo.identity not in gallery:
            gallery[photo.identity] = photo
    enrolled = {photo.path for photo in gallery.values()}
    return Split(
        gallery=gallery,
        probes=[p for p in photos if p.identity in gallery and p.path not in enrolled],
        strangers=[p for p in photos if p.identity in strangers],
    )


def celebrity_id(identity: str) -> str:
    return default_id(identity)


def write_gallery(directory: Path, data: Path, gallery: dict[str, Photo]) -> None:
    """A gallery directory in Opsis's format: one linked photo per identity and celebrities.csv."""
    with (directory / "celebrities.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["name", "id", "photos"])
        for number, (identity, photo) in enumerate(sorted(gallery.items())):
            link = directory / f"{number}{Path(photo.path).suffix}"
            link.symlink_to(data / photo.path)
            writer.writerow([identity, celebrity_id(identity), link.name])


# --- through the API ---------------------------------------------------------------------------------


def largest_face_outcome(response: dict[str, Any], expected: str | None) -> tuple[str, int]:
    """(outcome of the largest face, names given to other faces)."""
    faces = [(c["Face"]["BoundingBox"], c["Id"]) for c in response["CelebrityFaces"]]
    faces += [(face["BoundingBox"], None) for face in response["UnrecognizedFaces"]]
    if not faces:
        return "no face", 0
    order = sorted(faces, key=lambda item: -item[0]["Width"] * item[0]["Height"])
    named = order[0][1]
    bystanders = sum(1 for _, other in order[1:] if other is not None)
    if named is None:
        return "unrecognised", bystanders
    return ("hit" if named == expected else "wrong"), bystanders


def run_api(data: Path, split_: Split, settings: Settings, quick: bool) -> dict[str, Any]:
    probes, strangers = split_.probes, split_.strangers
    if quick:
        probes, strangers = probes[:: max(1, len(probes) // QUICK_PHOTOS)], strangers[:: max(1, len(strangers) // 20)]
    with server(settings) as (url, credentials), tempfile.TemporaryDirectory(prefix="opsis-gallery-") as tmp:
        write_gallery(Path(tmp), data, split_.gallery)
        start = time.perf_counter()
        with Opsis(Settings.load(data_dir=credentials.parent)) as opsis:
            imported = import_gallery(opsis.ctx, Path(tmp))
        import_seconds = time.perf_counter() - start
        rekognition = client(url, credentials)
        warm = (data / probes[0].path).read_bytes()
        for _ in range(3):
            rekognition.recognize_celebrities(Image={"Bytes": warm})
        probe_results = [recognize(rekognition, data, photo, celebrity_id(photo.identity)) for photo in probes]
        stranger_results = [recognize(rekognition, data, photo, None) for photo in strangers]
        some_id = imported[0].celebrity.celebrity_id
        info_ms = timed(lambda: rekognition.get_celebrity_info(Id=some_id), 50)
    return {
        "imported": imported,
        "import_seconds": import_seconds,
        "probes": probe_results,
        "strangers": stranger_results,
        "info_ms": info_ms,
    }


def recognize(rekognition: Any, data: Path, photo: Photo, expected: str | None) -> tuple[str, int, float]:
    body = (data / photo.path).read_bytes()
    start = time.perf_counter()
    response = rekognition.recognize_celebrities(Image={"Bytes": body})
    elapsed = (time.perf_counter() - start) * 1000
    outcome, bystanders = largest_face_outcome(response, expected)
    return outcome, bystanders, elapsed


def api_tables(results: dict[str, Any]) -> list[Table]:
    imported = results["imported"]
    faces = sum(entry.faces for entry in imported)
    outcomes = Counter(outcome for outcome, _, _ in results["probes"])
    stranger_outcomes = Counter(outcome for outcome, _, _ in results["strangers"])
    probes, strangers = len(results["probes"]), len(results["strangers"])
    faceless = sum(1 for entry in imported if entry.faces == 0)
    title = (
        f"RecognizeCelebrities at Similarity {MATCH_THRESHOLD:.0f}, gallery of {faces} faces "
        f"({len(imported)} identities, {faceless} without a usable face)"
    )
    table = Table("", "photos", "hit", "wrong Id", "unrecognised", "no face", "bystanders named", title=title)
    table.add_row(
        "photos of enrolled people",
        str(probes),
        f"{outcomes['hit']} ({outcomes['hit'] / max(probes, 1):.1%})",
        str(outcomes["wrong"]),
        str(outcomes["unrecognised"]),
        str(outcomes["no face"]),
        str(sum(b for _, b, _ in results["probes"])),
    )
    table.add_row(
        "photos of strangers",
        str(strangers),
        "",
        f"{stranger_outcomes['wrong']} ({stranger_outcomes['wrong'] / max(strangers, 1):.1%})",
        str(stranger_outcomes["unrecognised"]),
        str(stranger_outcomes["no face"]),
        str(sum(b for _, b, _ in results["strangers"])),
    )
    speed = Table("what", "calls", "p50 / p95 ms", title="Speed")
    recognise_ms = [ms for _, _, ms in results["probes"] + results["strangers"]]
    speed.add_row("RecognizeCelebrities, boto3 over HTTP", str(len(recognise_ms)), percentiles(recognise_ms))
    speed.add_row("GetCelebrityInfo, boto3 over HTTP", str(len(results["info_ms"])), percentiles(results["info_ms"]))
    speed.add_row("celebrities import (in-process)", str(faces), f"{faces / results['import_seconds']:.1f} faces/s")
    return [table, speed]


# --- offline threshold sweep -------------------------------------------------------------------------


def sweep_table(split_: Split, model_version: str) -> Table:
    scale = similarity_scale(model_version)
    names = sorted(split_.gallery)
    gallery = np.stack([split_.gallery[name].vector for name in names]).astype(np.float64)

    def nearest(photos: list[Photo]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = [p for p in photos if p.has_face]
        vectors = np.stack([p.vector for p in found]).astype(np.float64)
        distances = np.linalg.norm(vectors[:, None] - gallery[None], axis=2)
        best = distances.argmin(axis=1)
        similarity = scale.similarity(distances[np.arange(len(found)), best])
        truth = np.array([p.identity for p in found])
        return np.array(names)[best], similarity, truth

    probe_names, probe_similarity, truth = nearest(split_.probes)
    _, stranger_similarity, _ = nearest(split_.strangers)
    title = (
        f"Offline sweep (largest face of each photo): {len(split_.probes)} probe photos, "
        f"{len(split_.strangers)} stranger photos; photos without a face count as misses"
    )
    table = Table("Similarity", "hit rate", "wrong Id", "strangers named", title=title)
    for threshold in THRESHOLDS:
        accepted = probe_similarity >= threshold
        hits = int((accepted & (probe_names == truth)).sum())
        wrong = int((accepted & (probe_names != truth)).sum())
        named = int((stranger_similarity >= threshold).sum())
        marker = " (Opsis)" if threshold == MATCH_THRESHOLD else ""
        table.add_row(
            f"{threshold:.0f}{marker}",
            f"{hits / len(split_.probes):.1%}",
            str(wrong),
            f"{named} ({named / len(split_.strangers):.1%})",
        )
    return table


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help=f"probe about {QUICK_PHOTOS} photos")
    parser.add_argument("--model-threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse()
    data = args.data.resolve()
    if not (data / "faces" / "identities").is_dir():
        console.print(f"Skipped: shared data not found at {data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    settings = Settings.load(model_threads=args.model_threads)
    began, load_before = time.perf_counter(), uptime()
    photos = load_photos(data, settings.model_cache_dir)
    split_ = split(photos)
    tables = [sweep_table(split_, DlibResNetEmbedder.version)]
    tables += api_tables(run_api(data, split_, settings, args.quick))
    env = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model_threads (ORT intra-op)", str(settings.model_threads)),
        ("identities enrolled / strangers", f"{len(split_.gallery)} / {len({p.identity for p in split_.strangers})}"),
        ("embedding cache", str(RESULTS)),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        env.add_row(name, value)
    for table in [env, *tables]:
        console.print(table)


if __name__ == "__main__":
    main()
