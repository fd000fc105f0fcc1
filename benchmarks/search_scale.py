"""SearchFaces at scale: the embedded store's insert rate, index build, search latency, recall and memory.

For each collection size (10k, 100k and 1M faces by default; `--quick`: 10k and 50k), in a fresh
child process so that memory figures do not mix:

1. insert: the faces are added to a new `SQLiteFaceStore` in a temporary directory through
   `add_faces`, `--batch` faces per call, before anything searched the collection (so the vector
   index is not loaded: this is the SQLite insert path). Faces/s counts only `add_faces` time.
2. build: the first search loads the index (every vector read back from SQLite into the exact
   tier) and, at or above the HNSW threshold, starts the background graph build;
   `wait_for_indexes` waits for it. "build s" runs from that first search to the graph serving;
   "save s" from then until the graph file is on disk (the store writes it from the build thread
   after `wait_for_indexes` has returned; searches wait for the write, so none is timed before).
3. search: `--queries` calls of `store.search(..., limit=10, max_distance=10)` (p50/p95 ms, after 3
   warm-up calls), and recall@10: the share of the exact 10 nearest stored faces (a numpy brute
   force over the same vectors, top candidates re-scored in float64) that the store returns.
   Half the queries are new photos of stored people (known: their identity centre plus fresh
   noise), half are people not in the collection (new: fresh centre plus noise). A known query's
   10 nearest are the person's few faces then the nearest strangers; a new one's are all strangers
   at 0.6-0.9, where many stored faces are almost equally far, which is the harder case.
4. memory: VmRSS growth of the process from before the insert to after the searches (the synthetic
   vectors and ground truth are made before the baseline), also per million faces; the peak
   (VmHWM, reset at the baseline) covers the build; file sizes of the database (with its WAL) and
   of the saved graph.
5. reopen: `close()`, then a new store on the same file and its first search, which loads the saved
   graph instead of rebuilding it (recall is measured again after the reopen as a check).

Synthetic faces: real dlib embeddings of the shared identity sets (benchmarks/results/embeddings-*.npy
with their labels, 618 faces of 64 people) give the mean, the total covariance and the pooled
within-identity covariance. Identity centres are drawn from a Gaussian with the shape of the total
covariance scaled to the between-identity share of the variance (~72 %): 64 people are too few to
estimate a full-rank between-identity covariance. A face is its centre plus within-identity
Gaussian noise, scaled per face by a log-normal factor (sigma 0.3) because real photos vary in
quality. This reproduces the real distances: same person 5/50/95 % ~ 0.29/0.44/0.65 (real 0.29/0.44/0.66),
different people ~ 0.61/0.86/1.07 (real 0.65/0.88/1.03), norms ~1.47. Each person has 1 + Poisson(2)
faces (3 on average), inserted in random order. Without the embeddings the script falls back to an
isotropic Gaussian with the same variances, a harder case for HNSW (real embeddings have an effective
dimension of ~23, not 128).

Run: `.venv/bin/python benchmarks/search_scale.py [--quick | --sizes 10000,100000,1000000]`.
"""

from __future__ import annotations

import argparse
import csv
import gc
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from common import percentiles, timed, uptime
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.store.base import NewFace
from opsis.store.sqlite import SQLiteFaceStore
from opsis.store.vectors import HnswParams

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SETS = ("celeba", "deepface", "dlib_johns", "face_recognition")
DIMENSION = 128
LIMIT = 10
FACE_NOISE_SIGMA = 0.3  # log-normal spread of the within-identity noise, per face
BETWEEN_SHARE = 0.72  # share of the variance between identity centres, as measured on the identity sets
WITHIN_TRACE = 0.106  # total within-identity variance (sum over dimensions), likewise
SHARES = (BETWEEN_SHARE, 1 - BETWEEN_SHARE)
COLLECTION = "bench"
BOX = (0.2, 0.3, 0.4, 0.3)  # Width, Height, Left, Top of every synthetic face
console = Console(width=200)
Matrix = NDArray[np.float64]
Vectors = NDArray[np.float32]


# --- synthetic faces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceModel:
    """Gaussian identity centres plus Gaussian within-identity noise; factors are covariance roots."""

    mean: Matrix
    centre_root: Matrix
    noise_root: Matrix
    source: str

    def centres(self, rng: np.random.Generator, count: int) -> Matrix:
        return self.mean + rng.standard_normal((count, DIMENSION)) @ self.centre_root.T

    def faces(self, rng: np.random.Generator, centres: Matrix) -> Vectors:
        """One new face of each identity centre."""
        scale = np.exp(rng.normal(0.0, FACE_NOISE_SIGMA, (len(centres), 1)) - FACE_NOISE_SIGMA**2)
        noise = rng.standard_normal(centres.shape) @ self.noise_root.T
        return (centres + scale * noise).astype(np.float32)


def covariance_root(covariance: Matrix) -> Matrix:
    values, vectors = np.linalg.eigh(covariance)
    return np.asarray(vectors * np.sqrt(np.clip(values, 0.0, None)), np.float64)


def real_embeddings(data: Path) -> tuple[Matrix, NDArray[np.str_]] | None:
    """The cached real embeddings with a face, and their identity labels (None if either is missing)."""
    vectors, labels = [], []
    for name in SETS:
        cached = sorted(RESULTS.glob(f"embeddings-{name}-*.npy"))
        label_file = data / "faces" / "identities" / name / "labels.csv"
        if not cached or not label_file.is_file():
            continue
        embedded = np.load(cached[0]).astype(np.float64)
        with label_file.open() as file:
            identities = np.array([f"{name}/{row['identity']}" for row in csv.DictReader(file)])
        if len(identities) != len(embedded):
            continue
        found = ~np.isnan(embedded[:, 0])
        vectors.append(embedded[found])
        labels.append(identities[found])
    if not vectors:
        return None
    return np.concatenate(vectors), np.concatenate(labels)


def fit_face_model(data: Path) -> FaceModel:
    real = real_embeddings(data)
    if real is None:
        variance = WITHIN_TRACE / (1 - BETWEEN_SHARE) / DIMENSION  # per dimension
        centre_root, noise_root = (covariance_root(np.eye(DIMENSION) * variance * share) for share in SHARES)
        return FaceModel(np.zeros(DIMENSION), centre_root, noise_root, "isotropic Gaussian (no real embeddings)")
    vectors, labels = real
    _, identity = np.unique(labels, return_inverse=True)
    centres = np.stack([vectors[identity == i].mean(axis=0) for i in range(identity.max() + 1)])
    residuals = vectors - centres[identity]
    within = residuals.T @ residuals / (len(vectors) - len(centres))
    total = np.cov(vectors.T)
    share = 1.0 - np.trace(within) / np.trace(total)
    source = f"fitted to {len(vectors)} real embeddings of {len(centres)} people (between share {share:.2f})"
    return FaceModel(vectors.mean(axis=0), covariance_root(total * share), covariance_root(within), source)


@dataclass(frozen=True)
class Dataset:
    vectors: Vectors  # (n, d) stored faces; a face's row is its ExternalImageId
    queries: Vectors  # (q, d): the first `known` are new photos of stored people
    known: int
    truth: NDArray[np.int64]  # (q, LIMIT) rows of the exact nearest stored faces


def make_dataset(model: FaceModel, size: int, queries: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(2.0, size)  # more than enough people; cut at `size` faces
    people = np.repeat(np.arange(size), counts)[:size]
    rng.shuffle(people)
    centres = model.centres(rng, int(people.max()) + 1)
    vectors = np.concatenate([model.faces(rng, centres[chunk]) for chunk in np.array_split(people, 16)])
    known = queries // 2
    stored_people = people[rng.choice(size, known, replace=False)]
    new_people = model.centres(rng, queries - known)
    query_vectors = np.concatenate([model.faces(rng, centres[stored_people]), model.faces(rng, new_people)])
    return Dataset(vectors, query_vectors, known, exact_nearest(vectors, query_vectors, LIMIT))


def exact_nearest(vectors: Vectors, queries: Vectors, limit: int, chunk: int = 32) -> NDArray[np.int64]:
    """Rows of the `limit` nearest vectors of each query: a float32 scan, the top re-scored in float64."""
    norms = np.einsum("ij,ij->i", vectors, vectors)
    nearest = np.empty((len(queries), limit), np.int64)
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        scores = norms[None, :] - 2.0 * (block @ vectors.T)
        candidates = np.argpartition(scores, limit + 32, axis=1)[:, : limit + 32]
        for offset, (query, rows) in enumerate(zip(block, candidates, strict=True)):
            exact = np.square(vectors[rows].astype(np.float64) - query.astype(np.float64)).sum(axis=1)
            nearest[start + offset] = rows[np.argsort(exact, kind="stable")[:limit]]
    return nearest


# --- one collection size --------------------------------------------------------------------------


@dataclass
class Result:
    faces: int
    tier: str = "exact"
    insert_per_s: float = 0.0
    build_s: float = 0.0
    save_s: float | None = None  # None: no graph (exact tier)
    latency_ms: list[float] = field(default_factory=list)
    recall_known: float = 0.0
    recall_new: float = 0.0
    rss_mb: float = 0.0
    peak_mb: float | None = None  # None: VmHWM could not be reset
    db_mb: float = 0.0
    graph_mb: float = 0.0
    close_s: float = 0.0
    reopen_s: float = 0.0
    rebuilt_on_reopen: bool = False
    recall_reopened: float = 0.0

    @property
    def recall(self) -> float:
        return (self.recall_known + self.recall_new) / 2  # as many known as new queries (+-1)


def memory_kb(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def reset_peak_memory() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def fill(store: SQLiteFaceStore, vectors: Vectors, batch: int) -> float:
    """Faces/s of `add_faces` alone (building the NewFace objects is not timed)."""
    store.create_collection(COLLECTION, "synthetic-128", {})
    seconds = 0.0
    for start in range(0, len(vectors), batch):
        rows = range(start, min(start + batch, len(vectors)))
        faces = [NewFace(f"image-{row}", str(row), BOX, 99.9, vectors[row]) for row in rows]
        began = time.perf_counter()
        store.add_faces(COLLECTION, faces)
        seconds += time.perf_counter() - began
    return len(vectors) / seconds


def build(store: SQLiteFaceStore, query: Vectors) -> float:
    """Seconds from the first search (which loads the index) until no index build is left."""
    began = time.perf_counter()
    store.search(COLLECTION, query, LIMIT, 10.0)
    store.wait_for_indexes()
    return time.perf_counter() - began


def wait_for_graph_file(store: SQLiteFaceStore, timeout: float = 600.0) -> float:
    """Seconds until a saved graph appears beside the database (it is renamed there once complete)."""
    began = time.perf_counter()
    while not any(store.graph_dir.glob("*.usearch")):
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"no graph saved in {store.graph_dir}")
        time.sleep(0.01)
    return time.perf_counter() - began


def search_all(store: SQLiteFaceStore, queries: Vectors) -> tuple[list[float], NDArray[np.int64]]:
    """Latencies (ms) of searching every query once, and the rows each search returned (-1 = none)."""
    found = np.full((len(queries), LIMIT), -1, np.int64)
    order = itertools.cycle(range(len(queries)))  # the 3 warm-up calls search queries 0-2 twice

    def one() -> None:
        i = next(order)
        neighbours = store.search(COLLECTION, queries[i], LIMIT, 10.0)
        found[i, : len(neighbours)] = [int(neighbour.face.external_image_id or -1) for neighbour in neighbours]

    return timed(one, len(queries)), found


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Share of the true nearest (rows of `truth`) among those found, over all queries."""
    hits = [len(np.intersect1d(got, want)) for got, want in zip(found, truth, strict=True)]
    return float(np.sum(hits)) / truth.size


def disk_mb(*paths: Path) -> float:
    files = [file for path in paths for file in ([path] if path.is_file() else path.glob("*"))]
    return sum(file.stat().st_size for file in files if file.is_file()) / 2**20


def open_store(path: Path, args: argparse.Namespace) -> SQLiteFaceStore:
    return SQLiteFaceStore(path, hnsw_threshold=args.threshold, hnsw_params=hnsw_params(args))


def first_session(result: Result, path: Path, data: Dataset, args: argparse.Namespace) -> None:
    """Insert, build, search and measure memory, then close (which saves a graph not saved yet)."""
    baseline_kb, peak_known = memory_kb("VmRSS"), reset_peak_memory()
    store = open_store(path, args)
    result.insert_per_s = fill(store, data.vectors, args.batch)
    result.build_s = build(store, data.queries[0])
    if result.faces >= args.threshold:
        result.tier, result.save_s = "hnsw", wait_for_graph_file(store)
    result.latency_ms, found = search_all(store, data.queries)
    result.recall_known = recall(found[: data.known], data.truth[: data.known])
    result.recall_new = recall(found[data.known :], data.truth[data.known :])
    result.rss_mb = (memory_kb("VmRSS") - baseline_kb) / 1024
    result.peak_mb = (memory_kb("VmHWM") - baseline_kb) / 1024 if peak_known else None
    began = time.perf_counter()
    store.close()
    result.close_s = time.perf_counter() - began
    result.db_mb = disk_mb(path, path.with_name(path.name + "-wal"))
    result.graph_mb = disk_mb(store.graph_dir)


def second_session(result: Result, path: Path, data: Dataset, args: argparse.Namespace) -> None:
    """Reopen: open and first search (the saved graph is loaded), then recall again."""
    began = time.perf_counter()
    store = open_store(path, args)
    store.search(COLLECTION, data.queries[0], LIMIT, 10.0)
    result.reopen_s = time.perf_counter() - began
    result.rebuilt_on_reopen = not store.wait_for_indexes(0)
    store.wait_for_indexes()
    result.recall_reopened = recall(search_all(store, data.queries)[1], data.truth)
    store.close()


def measure(size: int, args: argparse.Namespace, model: FaceModel) -> Result:
    """Every figure for one collection size (run in a process of its own)."""
    data = make_dataset(model, size, args.queries, args.seed)
    gc.collect()
    result = Result(size)
    with tempfile.TemporaryDirectory(prefix="opsis-search-scale-", dir=args.tmp) as tmp:
        path = Path(tmp) / "faces.db"
        first_session(result, path, data, args)
        second_session(result, path, data, args)
    return result


# --- report ---------------------------------------------------------------------------------------


def optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS: tuple[tuple[str, Callable[[Result], str]], ...] = (
    ("faces", lambda r: f"{r.faces:,}"),
    ("tier", lambda r: r.tier),
    ("insert/s", lambda r: f"{r.insert_per_s:,.0f}"),
    ("build s", lambda r: f"{r.build_s:.1f}"),
    ("save s", lambda r: optional(r.save_s, ".1f")),
    ("p50 / p95 ms", lambda r: percentiles(r.latency_ms)),
    ("recall@10", lambda r: f"{r.recall:.4f}"),
    ("known / new", lambda r: f"{r.recall_known:.3f}/{r.recall_new:.3f}"),
    ("RSS MB", lambda r: f"{r.rss_mb:,.0f}"),
    ("MB/1M", lambda r: f"{r.rss_mb * 1e6 / r.faces:,.0f}"),
    ("peak MB", lambda r: optional(r.peak_mb, ",.0f")),
    ("DB MB", lambda r: f"{r.db_mb:,.0f}"),
    ("graph MB", lambda r: f"{r.graph_mb:,.0f}"),
    ("close s", lambda r: f"{r.close_s:.2f}"),
    ("reopen s", lambda r: f"{r.reopen_s:.2f}" + (" REBUILT" if r.rebuilt_on_reopen else "")),
    ("recall reopen", lambda r: f"{r.recall_reopened:.4f}"),
)


def results_table(results: list[Result]) -> Table:
    table = Table(*(name for name, _ in COLUMNS), title="Search at scale (limit 10; recall against exact search)")
    for result in results:
        table.add_row(*(cell(result) for _, cell in COLUMNS))
    return table


def hnsw_params(args: argparse.Namespace) -> HnswParams:
    return HnswParams(
        connectivity=args.connectivity,
        expansion_add=args.expansion_add,
        expansion_search=args.expansion_search,
        overfetch=args.overfetch,
    )


def settings_table(args: argparse.Namespace, model: FaceModel, began: float, load_before: str) -> Table:
    table = Table("", "value", title="Machine and settings")
    for name, value in (
        ("cores", str(os.cpu_count())),
        ("HnswParams", str(hnsw_params(args))),
        ("hnsw_threshold", f"{args.threshold:,}"),
        ("queries", f"{args.queries} ({args.queries // 2} known people, {args.queries - args.queries // 2} new)"),
        ("insert batch", f"{args.batch} faces per add_faces"),
        ("synthetic faces", model.source),
        ("uptime at start", load_before),
        ("uptime at end", uptime()),
        ("total run time", f"{time.perf_counter() - began:.0f} s"),
    ):
        table.add_row(name, value)
    return table


def parse() -> argparse.Namespace:
    defaults = HnswParams()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated collection sizes")
    parser.add_argument("--quick", action="store_true", help="sizes 10k and 50k, with the HNSW threshold at 20k")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1000, help="faces per add_faces call")
    parser.add_argument("--threshold", type=int, default=100_000, help="hnsw_threshold of the store")
    parser.add_argument("--connectivity", type=int, default=defaults.connectivity)
    parser.add_argument("--expansion-add", type=int, default=defaults.expansion_add)
    parser.add_argument("--expansion-search", type=int, default=defaults.expansion_search)
    parser.add_argument("--overfetch", type=float, default=defaults.overfetch)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, help="directory for the temporary stores (default: the system's)")
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("OPSIS_SHARED_DATA", REPO.parent / "shared" / "data"))
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.threshold = "10000,50000", 20_000
    return args


def main() -> None:
    args = parse()
    began, load_before = time.perf_counter(), uptime()
    console.print(f"uptime at start: {load_before}")
    model = fit_face_model(args.data)
    results = []
    for size in (int(size) for size in args.sizes.split(",")):
        # A process per size, so that RSS growth and peak are this size's alone.
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            results.append(pool.submit(measure, size, args, model).result())
        console.print(results_table(results[-1:]))
    console.print(settings_table(args, model, began, load_before))
    console.print(results_table(results))
    console.print(f"uptime at end: {uptime()}")


if __name__ == "__main__":
    main()
