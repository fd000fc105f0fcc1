"""Face identity benchmark: verification, 1:N identification and speed of the face embedder.

Measures, and prints as tables:
1. Verification on the shared identity sets (faces/identities/*), from the vectors of
   `identity_sets` (largest face of each photo, cached in benchmarks/results/). Two pair lists per
   set: every pair of photos within the set ("all pairs": same identity = genuine, else impostor;
   photos without a detected face are left out, as in the calibration) and the set's labelled
   `pairs.csv` (a photo with no face makes its pair a rejection). "overall" pools the sets' pairs.
   Accuracy is balanced (mean of the genuine and impostor accept/reject rates, i.e. accuracy on a
   50/50 pair list such as LFW's): at the best threshold chosen on the same pairs (optimistic), by
   10-fold cross-validation (threshold from 9 folds, scored on the 10th: LFW's protocol, beside the
   published LFW figure of the model), and at CompareFaces' default Similarity 80. TAR at FMR 1e-3
   and 1e-4: the share of genuine pairs accepted at the largest distance threshold that accepts at
   most FMR x impostors, with the Similarity of that threshold; "n/a" where there are fewer than
   1/FMR impostor pairs. EER where the false-match and false-non-match rates cross. Note that the
   Similarity scale was calibrated on these same "all pairs", so every "Sim 80" figure is in-sample.
2. Identification per set through the real store (`SQLiteFaceStore` in a temporary directory,
   `add_faces` + `search`, exact index): the first photo with a face of every identity is the
   gallery (identities with one such photo are distractors in the gallery), the other photos of
   identities with at least two are probes; a probe with no face counts as a miss. Rank-1 accuracy,
   rank-1 with Similarity >= 80 (what SearchFacesByImage would return first at its default
   threshold), and the share of probes whose closest other-identity face still has Similarity >= 80
   (a false match had the person not been enrolled).
3. Speed. In-process on one-face photos from the sets (exactly one face found, longest side >= 300
   px): decode, detection (`analyze`: RetinaFace + pose + quality), alignment and embedding
   (`DlibResNetEmbedder.embed` = dlib 5-point alignment + ONNX network) per face, and per face in one
   batch of the photo with most faces. End to end (boto3 -> HTTP -> `opsis serve`, a subprocess with
   a temporary data dir): IndexFaces faces/s into a new collection, sequentially and with 2 clients
   (threads, one boto3 client each; same photos, fresh collection); SearchFacesByImage and
   CompareFaces p50/p95 ms (sequential, after warm-up) on one photo and cycling over probe photos
   that are not in the collection, against the collection of the indexed faces.
4. `uptime` at start and end, the ONNX Runtime threads and inference workers.

    .venv/bin/python benchmarks/face_identity.py [--data ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from common import argument_parser, client, percentiles, server, timed, uptime
from identity_sets import IdentitySet, load_identity_sets, pair_distances
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.store.base import NewFace
from opsis.store.sqlite import SQLiteFaceStore
from opsis.vision.faces import analyze, find_faces, largest
from opsis.vision.image import decode_image
from opsis.vision.runners.dlib_resnet import DlibResNetEmbedder
from opsis.vision.runners.retinaface import RetinaFaceDetector
from opsis.vision.similarity import SimilarityScale, similarity_scale

FMRS = (1e-3, 1e-4)
THRESHOLD = 80.0  # CompareFaces' SimilarityThreshold and SearchFaces' FaceMatchThreshold default
FOLDS = 10
SEED = 0
PUBLISHED = ("LFW (published: dlib-models)", "6000", "3000", "3000", "99.38%")
MIN_SPEED_SIDE = 300
TARGETS = {"SearchFacesByImage": 150.0, "embedding": 30.0}  # ms, from the issue
console = Console(width=170)
Floats = NDArray[np.float64]


# --- verification ---------------------------------------------------------------------------------


def labelled_pair_distances(identity_set: IdentitySet, data: Path) -> tuple[Floats, Floats]:
    """(genuine, impostor) distances of the set's pairs.csv; inf where a photo has no face."""
    path = data / "faces" / "identities" / identity_set.name / "pairs.csv"
    if not path.exists():
        return np.zeros(0), np.zeros(0)
    rows = {p: i for i, p in enumerate(identity_set.paths)}
    vectors = identity_set.vectors.astype(np.float64)
    genuine: list[float] = []
    impostor: list[float] = []
    with path.open() as file:
        for pair in csv.DictReader(file):
            a, b = rows.get(pair["path_a"]), rows.get(pair["path_b"])
            distance = np.inf if a is None or b is None else float(np.linalg.norm(vectors[a] - vectors[b]))
            (genuine if pair["same"] == "1" else impostor).append(np.inf if np.isnan(distance) else distance)
    return np.array(genuine), np.array(impostor)


def rates(genuine: Floats, impostor: Floats, thresholds: Floats) -> tuple[Floats, Floats]:
    """(TAR, FMR) when pairs at distance <= each threshold are accepted."""
    tar = np.searchsorted(np.sort(genuine), thresholds, "right") / max(len(genuine), 1)
    fmr = np.searchsorted(np.sort(impostor), thresholds, "right") / max(len(impostor), 1)
    return tar, fmr


def candidate_thresholds(genuine: Floats, impostor: Floats) -> Floats:
    """Every finite distance, and one below them all (accept nothing)."""
    distances = np.unique(np.concatenate([genuine, impostor]))
    return np.concatenate([[-1.0], distances[np.isfinite(distances)]])


def best_threshold(genuine: Floats, impostor: Floats) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising balanced accuracy on these pairs."""
    thresholds = candidate_thresholds(genuine, impostor)
    tar, fmr = rates(genuine, impostor, thresholds)
    best = int(np.argmax(tar + 1 - fmr))
    return float(thresholds[best]), float((tar[best] + 1 - fmr[best]) / 2)


def balanced_accuracy(genuine: Floats, impostor: Floats, threshold: float) -> float:
    tar, fmr = rates(genuine, impostor, np.array([threshold]))
    return float((tar[0] + 1 - fmr[0]) / 2)


def cross_validated_accuracy(genuine: Floats, impostor: Floats) -> float:
    """Mean balanced accuracy over FOLDS folds, each scored at the best threshold of the others."""
    rng = np.random.default_rng(SEED)
    folds_g = rng.permutation(len(genuine)) % FOLDS
    folds_i = rng.permutation(len(impostor)) % FOLDS
    scores = []
    for fold in range(FOLDS):
        threshold, _ = best_threshold(genuine[folds_g != fold], impostor[folds_i != fold])
        scores.append(balanced_accuracy(genuine[folds_g == fold], impostor[folds_i == fold], threshold))
    return float(np.mean(scores))


def tar_at_fmr(genuine: Floats, impostor: Floats, fmr: float) -> tuple[float, float] | None:
    """(TAR, threshold) accepting distances below the (k+1)-th smallest impostor, k = fmr x count."""
    if len(impostor) * fmr < 1:
        return None
    allowed = int(np.floor(fmr * len(impostor)))
    threshold = float(np.sort(impostor)[allowed])
    return float((genuine < threshold).mean()), threshold


def equal_error_rate(genuine: Floats, impostor: Floats) -> float:
    tar, fmr = rates(genuine, impostor, candidate_thresholds(genuine, impostor))
    crossing = int(np.argmin(np.abs(fmr - (1 - tar))))
    return float((fmr[crossing] + 1 - tar[crossing]) / 2)


def verification_row(name: str, genuine: Floats, impostor: Floats, scale: SimilarityScale) -> list[str]:
    threshold, accuracy = best_threshold(genuine, impostor)
    tars = []
    for fmr in FMRS:
        point = tar_at_fmr(genuine, impostor, fmr)
        tars.append(
            f"n/a (<{1 / fmr:,.0f} imp.)" if point is None else f"{point[0]:.3f} (Sim {scale.similarity(point[1]):.1f})"
        )
    return [
        name,
        str(len(genuine) + len(impostor)),
        str(len(genuine)),
        str(len(impostor)),
        f"{cross_validated_accuracy(genuine, impostor):.2%}",
        f"{accuracy:.2%} (Sim {scale.similarity(threshold):.1f})",
        f"{balanced_accuracy(genuine, impostor, scale.max_distance(THRESHOLD)):.2%}",
        *tars,
        f"{equal_error_rate(genuine, impostor):.2%}",
    ]


def verification_table(sets: list[IdentitySet], data: Path, scale: SimilarityScale) -> Table:
    table = Table(
        "set / pairs",
        "pairs",
        "genuine",
        "impostor",
        "acc 10-fold",
        "acc best thr",
        f"acc @ Sim {THRESHOLD:.0f}",
        *(f"TAR @ FMR {fmr:.0e}" for fmr in FMRS),
        "EER",
        title="Verification (balanced accuracy; Sim = Opsis Similarity of the threshold)",
    )
    pooled: dict[str, list[tuple[Floats, Floats]]] = {"all pairs": [], "pairs.csv": []}
    for identity_set in sets:
        for kind, (genuine, impostor) in (
            ("all pairs", pair_distances(identity_set)),
            ("pairs.csv", labelled_pair_distances(identity_set, data)),
        ):
            if len(genuine) and len(impostor):
                pooled[kind].append((genuine, impostor))
                table.add_row(*verification_row(f"{identity_set.name} / {kind}", genuine, impostor, scale))
    table.add_section()
    for kind, parts in pooled.items():
        if parts:
            genuine, impostor = (np.concatenate(column) for column in zip(*parts, strict=True))
            table.add_row(*verification_row(f"overall / {kind}", genuine, impostor, scale), style="bold")
    table.add_row(*PUBLISHED, *["-"] * (len(table.columns) - len(PUBLISHED)), style="italic")
    return table


# --- identification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    gallery: list[int]  # rows of the identity set
    probes: list[int]  # rows of mated probes with a face
    missed: int  # mated probes without a face


def gallery_split(identity_set: IdentitySet) -> Split:
    """The first photo with a face of each identity is its gallery face; the identity's other photos probe."""
    found, labels = identity_set.found, identity_set.identities.tolist()
    gallery: dict[str, int] = {}
    for row, label in enumerate(labels):
        if found[row]:
            gallery.setdefault(label, row)
    mated = [row for row, label in enumerate(labels) if gallery.get(label, row) != row]
    return Split(list(gallery.values()), [r for r in mated if found[r]], sum(not found[r] for r in mated))


def identification_row(store: SQLiteFaceStore, identity_set: IdentitySet, scale: SimilarityScale) -> list[int]:
    """[gallery, probes, probes with no face, rank-1, rank-1 >= 80, closest non-mate >= 80] counts."""
    split = gallery_split(identity_set)
    name, vectors, labels = identity_set.name, identity_set.vectors, identity_set.identities.tolist()
    store.create_collection(name, DlibResNetEmbedder.version, {})
    store.add_faces(
        name,
        [NewFace(identity_set.paths[r], labels[r], (0.0, 0.0, 0.0, 0.0), 100.0, vectors[r]) for r in split.gallery],
    )
    outcomes = np.array(
        [
            probe_outcome(store, name, vectors[row], labels[row], limit=len(split.gallery), scale=scale)
            for row in split.probes
        ],
        np.int64,
    ).reshape(-1, 3)
    probes = len(split.probes) + split.missed
    return [len(split.gallery), probes, split.missed, *(int(n) for n in outcomes.sum(axis=0))]


def probe_outcome(
    store: SQLiteFaceStore,
    collection: str,
    vector: NDArray[np.float32],
    label: str,
    *,
    limit: int,
    scale: SimilarityScale,
) -> tuple[bool, bool, bool]:
    """(rank-1 correct, ... and Similarity >= 80, closest other identity has Similarity >= 80)."""
    neighbours = sorted(store.search(collection, vector, limit, np.inf), key=lambda n: n.distance)
    similarities = [float(scale.similarity(n.distance)) for n in neighbours]
    mated = [n.face.external_image_id == label for n in neighbours]
    correct = bool(mated) and mated[0]
    non_mate = next((s for s, same in zip(similarities, mated, strict=True) if not same), 0.0)
    return correct, correct and similarities[0] >= THRESHOLD, non_mate >= THRESHOLD


def identification_table(sets: list[IdentitySet], scale: SimilarityScale) -> Table:
    table = Table(
        "set",
        "gallery faces",
        "mated probes",
        "no face",
        "rank-1",
        f"rank-1 & Sim >= {THRESHOLD:.0f}",
        f"closest non-mate Sim >= {THRESHOLD:.0f}",
        title="1:N identification through SQLiteFaceStore (exact search); gallery = first photo per identity",
    )
    totals = np.zeros(6, np.int64)
    with tempfile.TemporaryDirectory(prefix="opsis-identity-") as tmp:
        store = SQLiteFaceStore(Path(tmp) / "faces.db")
        try:
            for identity_set in sets:
                counts = identification_row(store, identity_set, scale)
                totals += counts
                table.add_row(identity_set.name, *identification_cells(counts))
        finally:
            store.close()
    table.add_section()
    table.add_row("overall", *identification_cells([int(c) for c in totals]), style="bold")
    return table


def identification_cells(counts: list[int]) -> list[str]:
    gallery, probes, missed, rank1, sure, impostor = counts
    share = max(probes, 1)
    return [
        str(gallery),
        str(probes),
        str(missed),
        f"{rank1 / share:.2%}",
        f"{sure / share:.2%}",
        f"{impostor / max(probes - missed, 1):.2%}",
    ]


# --- speed, in process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    path: str
    identity: str
    data: bytes
    size: tuple[int, int]
    faces: int


@dataclass(frozen=True)
class SpeedPlan:
    indexed: list[Photo]
    probes: list[Photo]
    count: int


def speed_photos(data: Path, sets: list[IdentitySet], detector: RetinaFaceDetector, wanted: int) -> list[Photo]:
    """Up to `wanted` photos of the sets with exactly one face and longest side >= MIN_SPEED_SIDE,
    plus (last) the photo seen with the most faces when it has more than one."""
    chosen: list[Photo] = []
    crowded: Photo | None = None
    for path, identity in ((p, i) for s in sets for p, i in zip(s.paths, s.identities.tolist(), strict=True)):
        photo = inspect(data, path, identity, detector)
        if photo is None:
            continue
        if photo.faces == 1 and len(chosen) < wanted:
            chosen.append(photo)
        if photo.faces > max(1, crowded.faces if crowded else 1):
            crowded = photo
        if len(chosen) == wanted and crowded is not None and crowded.faces >= 3:
            break
    return chosen + ([crowded] if crowded else [])


def inspect(data: Path, path: str, identity: str, detector: RetinaFaceDetector) -> Photo | None:
    raw = (data / path).read_bytes()
    image = decode_image(raw)
    if max(image.width, image.height) < MIN_SPEED_SIDE:
        return None
    return Photo(path, identity, raw, (image.width, image.height), len(find_faces(image, detector)))


def in_process_table(photos: list[Photo], settings: Settings, count: int) -> Table:
    detector = RetinaFaceDetector(threads=settings.model_threads)
    embedder = DlibResNetEmbedder(settings.model_cache_dir, threads=settings.model_threads)
    one_face = [p for p in photos if p.faces == 1][:count]
    images = [decode_image(p.data) for p in one_face]
    faces = [largest(analyze(image, detector), 1) for image in images]
    table = Table("step", "photos", "N", "p50 / p95 ms", "target", title="In process, one-face photos (cycled)")
    steps: list[tuple[str, Callable[[int], Any]]] = [
        ("decode", lambda i: decode_image(one_face[i].data)),
        ("detection (analyze)", lambda i: analyze(images[i], detector)),
        ("alignment (5 points + chip)", lambda i: embedder.align(images[i].pixels, faces[i])),
        ("embedding per face (align + network)", lambda i: embedder.embed(images[i].pixels, faces[i])),
    ]
    described = describe(one_face)
    for name, step in steps:
        times = cycled(step, len(one_face), count)
        target = f"<= {TARGETS['embedding']:.0f} ms" if name.startswith("embedding") else ""
        table.add_row(name, described, str(count), percentiles(times), target)
    crowd = [p for p in photos if p.faces > 1]
    if crowd:
        table.add_row(*batch_row(crowd[-1], detector, embedder, count))
    return table


def batch_row(photo: Photo, detector: RetinaFaceDetector, embedder: DlibResNetEmbedder, count: int) -> list[str]:
    image = decode_image(photo.data)
    faces = analyze(image, detector)
    times = [ms / len(faces) for ms in timed(lambda: embedder.embed(image.pixels, faces), max(count // 5, 3))]
    size = f"{photo.size[0]}x{photo.size[1]}"
    return [f"embedding per face, batch of {len(faces)}", f"1 photo {size}", str(len(times)), percentiles(times), ""]


def cycled(step: Callable[[int], Any], photos: int, count: int) -> list[float]:
    indexes = cycle(range(photos))
    return timed(lambda: step(next(indexes)), count)


def share(flags: dict[int, bool]) -> str:
    return f"{np.mean(list(flags.values())):.0%}" if flags else "-"


def describe(photos: list[Photo]) -> str:
    if len(photos) == 1:
        return f"1 photo, {photos[0].size[0]}x{photos[0].size[1]}"
    sides = sorted(max(p.size) for p in photos)
    spread = f"{sides[0]}" if sides[0] == sides[-1] else f"{sides[0]}-{sides[-1]} (median {int(np.median(sides))})"
    return f"{len(photos)} photos, longest side {spread} px"


# --- speed, end to end ----------------------------------------------------------------------------


def index_all(rekognition: Any, collection: str, photos: list[Photo]) -> tuple[int, list[float], list[str]]:
    """(faces indexed, ms per call, error names) of IndexFaces on each photo."""
    faces, times, errors = 0, [], []
    for photo in photos:
        start = time.perf_counter()
        try:
            response = rekognition.index_faces(
                CollectionId=collection, Image={"Bytes": photo.data}, ExternalImageId=photo.path.replace("/", ":")
            )
            faces += len(response["FaceRecords"])
            times.append((time.perf_counter() - start) * 1000)
        except Exception as error:  # counted and reported, never fatal
            errors.append(type(error).__name__)
    return faces, times, errors


def index_throughput(url: str, credentials: Path, photos: list[Photo], clients: int) -> list[str]:
    """IndexFaces of `photos` into a new collection, split across `clients` threads."""
    collection = f"throughput-{clients}"
    client(url, credentials).create_collection(CollectionId=collection)
    shares = [photos[i::clients] for i in range(clients)]
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda share: index_all(client(url, credentials), collection, share), shares))
    elapsed = time.perf_counter() - began
    faces = sum(r[0] for r in results)
    times = [t for r in results for t in r[1]]
    errors = [e for r in results for e in r[2]]
    kinds = ", ".join(sorted(set(errors))) or "-"
    return [
        str(clients),
        str(len(photos)),
        str(faces),
        f"{len(errors)} ({kinds})",
        f"{elapsed:.1f}",
        f"{faces / elapsed:.2f}",
        percentiles(times) if times else "-",
    ]


def http_latency_table(rekognition: Any, collection: str, plan: SpeedPlan) -> Table:
    table = Table(
        "operation", "photos", "N", "p50 / p95 ms", "matched", "target", title="End to end latency (boto3 -> HTTP)"
    )
    for label, photos in (("one photo", plan.probes[:1]), ("cycled", plan.probes)):
        table.add_row(*search_row(rekognition, collection, label, photos, plan.count))
    pairs = [(probe, next(p for p in plan.indexed if p.identity == probe.identity)) for probe in plan.probes]
    for label, chosen in (("one same-person pair", pairs[:1]), ("cycled same-person pairs", pairs)):
        table.add_row(*compare_row(rekognition, label, chosen, plan.count))
    return table


def search_row(rekognition: Any, collection: str, label: str, photos: list[Photo], count: int) -> list[str]:
    """SearchFacesByImage of each photo in turn; "matched": share of the photos with a FaceMatch."""
    matched: dict[int, bool] = {}

    def search(i: int) -> None:
        response = rekognition.search_faces_by_image(CollectionId=collection, Image={"Bytes": photos[i].data})
        matched[i] = bool(response["FaceMatches"])

    times = cycled(search, len(photos), count)
    target = f"<= {TARGETS['SearchFacesByImage']:.0f} ms"
    return [f"SearchFacesByImage ({label})", describe(photos), str(count), percentiles(times), share(matched), target]


def compare_row(rekognition: Any, label: str, pairs: list[tuple[Photo, Photo]], count: int) -> list[str]:
    """CompareFaces of each (source, target) pair in turn; "matched": share of the pairs with a FaceMatch."""
    matched: dict[int, bool] = {}

    def compare(i: int) -> None:
        source, target = pairs[i]
        response = rekognition.compare_faces(SourceImage={"Bytes": source.data}, TargetImage={"Bytes": target.data})
        matched[i] = bool(response["FaceMatches"])

    times = cycled(compare, len(pairs), count)
    photos = f"{len(pairs)} pair(s): " + describe([photo for pair in pairs for photo in pair])
    return [f"CompareFaces ({label})", photos, str(count), percentiles(times), share(matched), ""]


def http_tables(settings: Settings, plan: SpeedPlan) -> list[Table]:
    throughput = Table(
        "clients",
        "photos",
        "faces indexed",
        "errors",
        "seconds",
        "faces/s",
        "p50 / p95 ms per call",
        title="IndexFaces throughput (one-face photos, new collection, QualityFilter AUTO)",
    )
    with server(settings) as (url, credentials):
        rekognition = client(url, credentials)
        rekognition.create_collection(CollectionId="warm-up")
        index_all(rekognition, "warm-up", plan.probes[:3])
        for clients in (1, 2):
            throughput.add_row(*index_throughput(url, credentials, plan.indexed, clients))
        latency = http_latency_table(rekognition, "throughput-1", plan)
    return [throughput, latency]


def plan_speed(data: Path, sets: list[IdentitySet], settings: Settings, quick: bool) -> tuple[list[Photo], SpeedPlan]:
    """One-face photos (plus a crowded one, for the batch row) split into indexed photos and probes:
    a photo probes when its identity is already indexed (one probe per 5 indexed), else is indexed."""
    indexed_count, probe_count = (20, 5) if quick else (200, 20)
    detector = RetinaFaceDetector(threads=settings.model_threads)
    photos = speed_photos(data, sets, detector, (indexed_count + probe_count) * 3 // 2)
    indexed: list[Photo] = []
    probes: list[Photo] = []
    for photo in (p for p in photos if p.faces == 1):
        known = any(p.identity == photo.identity for p in indexed)
        if known and len(probes) < probe_count and len(probes) * 5 < len(indexed):
            probes.append(photo)
        elif len(indexed) < indexed_count:
            indexed.append(photo)
    return photos, SpeedPlan(indexed, probes, 10 if quick else 50)


# --- main -----------------------------------------------------------------------------------------


def settings_table(settings: Settings, began: float, load_before: str) -> Table:
    table = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("onnxruntime", onnxruntime.__version__),
        ("model_threads (ORT intra-op, server and in-process)", str(settings.model_threads)),
        ("inference_workers (server)", str(settings.inference_workers)),
        ("face model", DlibResNetEmbedder.version),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        table.add_row(name, value)
    return table


def parse() -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="20 photos indexed, 10 timed calls per row")
    parser.add_argument("--model-threads", type=int, help="ONNX Runtime intra-op threads per request")
    parser.add_argument("--workers", type=int, help="requests running models at once in the server")
    return parser.parse_args()


def tables(args: argparse.Namespace, settings: Settings) -> Iterator[Table]:
    data = args.data.resolve()
    sets = load_identity_sets(data, settings.model_cache_dir)
    scale = similarity_scale(DlibResNetEmbedder.version)
    yield verification_table(sets, data, scale)
    yield identification_table(sets, scale)
    photos, plan = plan_speed(data, sets, settings, args.quick)
    yield in_process_table(photos, settings, plan.count)
    yield from http_tables(settings, plan)


def main() -> None:
    args = parse()
    if not (args.data / "faces" / "identities").is_dir():
        console.print(f"Skipped: shared data not found at {args.data} (pass --data or set OPSIS_SHARED_DATA).")
        return
    settings = Settings.load(model_threads=args.model_threads, inference_workers=args.workers)
    began, load_before = time.perf_counter(), uptime()
    console.print(f"uptime at start: {load_before}")
    for table in tables(args, settings):
        console.print(table)
    console.print(settings_table(settings, began, load_before))


if __name__ == "__main__":
    main()
