"""Nearest-neighbour indexes over face vectors, keyed by int64 ids: a rebuildable cache of the store.

Three indexes share the small `VectorIndex` protocol, all with Euclidean (L2) distance:

* `ExactIndex`: a contiguous float32 matrix scanned with one BLAS matrix-vector product
  (||x||^2 - 2 q.x with cached norms), the top candidates re-scored exactly. Recall 1.0.
* `HnswIndex`: a usearch HNSW graph (metric l2sq, f32 storage) whose candidates are re-scored
  exactly from the stored vectors, so both indexes report the same distances for the same face.
* `TieredIndex`: exact below `hnsw_threshold` vectors and HNSW at or above it. Crossing the
  threshold, or piling up tombstones, starts a rebuild: in a background thread for big sets while
  the old index keeps serving (changes made meanwhile are logged and replayed before the swap).

Distances are plain L2 (not squared), ascending. usearch only tombstones a removed vector: it
stays in the graph's memory (never returned) until the graph is rebuilt. So a graph with
tombstones is never saved: `save` writes only graphs that hold no removed vector, and the rebuild
that clears tombstones runs once they pass `TOMBSTONE_SHARE` of the graph. (Overwriting removed
slots in place, e.g. by adding zero vectors into them, wrecks the graph's recall: measured.)

None of these classes lock against concurrent mutation and search: the store does that (a search
may run alongside other searches, never alongside `add` or `remove`). `TieredIndex` locks only
around its own background rebuild.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from usearch.index import Index

log = logging.getLogger(__name__)

Ids = NDArray[np.int64]
Vectors = NDArray[np.float32]
Tier = Literal["exact", "hnsw"]
_Scalar = TypeVar("_Scalar", bound=np.generic)

# Candidates the exact scan re-scores beyond `limit`: float32 norms-and-dot-product distances can
# swap neighbours closer than ~1e-6 apart, which only an exact re-score puts back in order.
RESCORE_SLACK = 16
# Rebuild an HNSW graph once the vectors removed from it exceed this share of its size.
TOMBSTONE_SHARE = 0.2
# Rebuilds of at least this many vectors run in a background thread; smaller ones take < ~2 s.
BACKGROUND_MIN = 20_000
# Vectors per usearch call during a background build, so a cancelled build stops soon.
BUILD_CHUNK = 16_384


class VectorIndex(Protocol):
    """Vectors keyed by int64 ids, searched by Euclidean distance."""

    dimension: int

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Adds (n,) new ids with their (n, dimension) vectors; ids must not be present."""
        ...

    def remove(self, ids: Ids) -> None:
        """Removes those of `ids` that are present; unknown ids are ignored."""
        ...

    def search(self, vector: Vectors, limit: int) -> tuple[Ids, Vectors]:
        """Up to `limit` (ids, L2 distances) nearest to `vector`, nearest first."""
        ...

    def contents(self) -> tuple[Ids, Vectors]:
        """Every (id, vector) held, as new arrays."""
        ...

    def __len__(self) -> int: ...


def empty_result() -> tuple[Ids, Vectors]:
    return np.empty(0, np.int64), np.empty(0, np.float32)


def rescore(query: Vectors, ids: Ids, vectors: Vectors, limit: int) -> tuple[Ids, Vectors]:
    """The `limit` nearest of the candidates by exact L2 distance (in float64), nearest first."""
    distances = np.sqrt(np.square(vectors.astype(np.float64) - query.astype(np.float64)).sum(axis=1))
    order = np.argsort(distances, kind="stable")[:limit]
    return ids[order], distances[order].astype(np.float32)


# --- exact ------------------------------------------------------------------------------------------


class ExactIndex:
    """Brute force over a contiguous matrix kept in id order (ids are rowids, mostly appended)."""

    def __init__(self, dimension: int, capacity: int = 1024) -> None:
        self.dimension = dimension
        self._size = 0
        self._ids = np.empty(capacity, np.int64)
        self._vectors = np.empty((capacity, dimension), np.float32)
        self._norms = np.empty(capacity, np.float32)  # squared, so a scan is one BLAS call

    @classmethod
    def from_arrays(cls, ids: Ids, vectors: Vectors) -> ExactIndex:
        """An index holding these vectors (copied)."""
        index = cls(vectors.shape[1], capacity=max(1024, len(ids)))
        index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return self._size

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids) == 0:
            return
        ids, vectors = _sorted(np.asarray(ids, np.int64), _check(vectors, self.dimension))
        self._reserve(self._size + len(ids))
        end = self._size + len(ids)
        self._ids[self._size : end] = ids
        self._vectors[self._size : end] = vectors
        self._norms[self._size : end] = np.einsum("ij,ij->i", vectors, vectors)
        appended_in_order = self._size == 0 or ids[0] > self._ids[self._size - 1]
        self._size = end
        if not appended_in_order:
            self._sort()

    def remove(self, ids: Ids) -> None:
        rows = self._rows_of(np.asarray(ids, np.int64))
        if len(rows) == 0:
            return
        keep = np.ones(self._size, bool)
        keep[rows] = False
        kept = int(keep.sum())
        self._ids[:kept] = self._ids[: self._size][keep]
        self._vectors[:kept] = self._vectors[: self._size][keep]
        self._norms[:kept] = self._norms[: self._size][keep]
        # Zero the freed tail: a removed face's vector should not linger in memory either.
        self._vectors[kept : self._size] = 0
        self._size = kept

    def search(self, vector: Vectors, limit: int) -> tuple[Ids, Vectors]:
        size = self._size
        if size == 0 or limit <= 0:
            return empty_result()
        query = _check(vector.reshape(1, -1), self.dimension)[0]
        # ||q - x||^2 = ||x||^2 - 2 q.x + ||q||^2; the last term does not change the order.
        scores = self._norms[:size] - 2.0 * (self._vectors[:size] @ query)
        count = min(size, limit + RESCORE_SLACK)
        rows = np.argpartition(scores, count - 1)[:count] if count < size else np.arange(size)
        return rescore(query, self._ids[rows], self._vectors[rows], limit)

    def contents(self) -> tuple[Ids, Vectors]:
        return self._ids[: self._size].copy(), self._vectors[: self._size].copy()

    def _rows_of(self, ids: Ids) -> NDArray[np.intp]:
        ids_held = self._ids[: self._size]
        rows = np.searchsorted(ids_held, ids)
        rows = rows[rows < self._size]
        return np.unique(rows[np.isin(ids_held[rows], ids)])

    def _reserve(self, size: int) -> None:
        capacity = len(self._ids)
        if size <= capacity:
            return
        capacity = max(size, capacity * 2)
        self._ids = _grown(self._ids, capacity)
        self._vectors = _grown(self._vectors, capacity)
        self._norms = _grown(self._norms, capacity)

    def _sort(self) -> None:
        order = np.argsort(self._ids[: self._size], kind="stable")
        self._ids[: self._size] = self._ids[order]
        self._vectors[: self._size] = self._vectors[order]
        self._norms[: self._size] = self._norms[order]


def _grown(array: NDArray[_Scalar], capacity: int) -> NDArray[_Scalar]:
    grown = np.empty((capacity, *array.shape[1:]), array.dtype)
    grown[: len(array)] = array
    return grown


def _sorted(ids: Ids, vectors: Vectors) -> tuple[Ids, Vectors]:
    if len(ids) > 1 and np.any(ids[1:] <= ids[:-1]):
        order = np.argsort(ids, kind="stable")
        return ids[order], vectors[order]
    return ids, vectors


def _check(vectors: NDArray[np.floating], dimension: int) -> Vectors:
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise ValueError(f"expected vectors of dimension {dimension}, got shape {vectors.shape}")
    return np.ascontiguousarray(vectors, np.float32)


# --- HNSW ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HnswParams:
    """usearch HNSW settings; defaults tuned with benchmarks/search_scale.py on 128-d vectors."""

    connectivity: int = 32
    expansion_add: int = 128
    expansion_search: int = 416  # ef; a search uses max(this, 2 * limit)
    overfetch: float = 1.0  # candidates re-scored = ceil(limit * overfetch)
    threads: int = 0  # for bulk adds; 0 = every core

    def build_threads(self) -> int:
        return self.threads or (os.cpu_count() or 1)


class HnswIndex:
    """A usearch HNSW graph with f32 vectors; candidates are re-scored exactly."""

    def __init__(self, dimension: int, params: HnswParams | None = None) -> None:
        self.dimension = dimension
        self.params = params or HnswParams()
        self._index = Index(
            ndim=dimension,
            metric="l2sq",
            dtype="f32",
            connectivity=self.params.connectivity,
            expansion_add=self.params.expansion_add,
            expansion_search=self.params.expansion_search,
        )
        # usearch's Python search picks its per-thread scratch space by the number of the worker in
        # its own executor, so two concurrent searches would share one: serialise calls into it.
        self._lock = threading.Lock()
        self.tombstones = 0

    @classmethod
    def load(cls, path: Path, dimension: int, params: HnswParams | None = None) -> HnswIndex:
        """An index read from a file written by `save` (the caller has validated the file)."""
        index = cls(dimension, params)
        index._index.load(os.fspath(path))
        if index._index.ndim != dimension:
            raise ValueError(f"{path} holds vectors of dimension {index._index.ndim}, not {dimension}")
        index._set_expansion_search(index.params.expansion_search)
        return index

    def save(self, path: Path) -> bool:
        """Writes the graph and its vectors to `path`, unless it holds removed vectors (False)."""
        with self._lock:
            if self.tombstones:
                return False
            self._index.save(os.fspath(path))
            return True

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: Ids, vectors: Vectors, threads: int | None = None) -> None:
        if len(ids) == 0:
            return
        vectors = _check(vectors, self.dimension)
        with self._lock:
            self._index.add(np.asarray(ids, np.int64), vectors, threads=threads or self.params.build_threads())

    def remove(self, ids: Ids) -> None:
        ids = np.unique(np.asarray(ids, np.int64))
        with self._lock:
            self.tombstones += int(np.sum(self._index.remove(ids))) if len(ids) else 0

    def search(self, vector: Vectors, limit: int) -> tuple[Ids, Vectors]:
        if limit <= 0:
            return empty_result()
        query = _check(vector.reshape(1, -1), self.dimension)[0]
        wanted = max(limit, int(np.ceil(limit * self.params.overfetch)))
        with self._lock:
            if len(self._index) == 0:
                return empty_result()
            self._set_expansion_search(max(self.params.expansion_search, 2 * wanted))
            matches = self._index.search(query, wanted, threads=1)
            ids = np.asarray(matches.keys, np.int64)
            vectors = self._vectors_of(ids)
        return rescore(query, ids, vectors, limit)

    def _set_expansion_search(self, expansion: int) -> None:
        if self._index.expansion_search != expansion:
            # usearch declares this setter after another property's, which mypy reads as read-only.
            self._index.expansion_search = expansion  # type: ignore[misc]

    def contents(self) -> tuple[Ids, Vectors]:
        with self._lock:
            ids = np.sort(np.asarray(self._index.keys, np.int64))
            return ids, self._vectors_of(ids)

    def _vectors_of(self, ids: Ids) -> Vectors:
        if len(ids) == 0:
            return np.empty((0, self.dimension), np.float32)
        # Every id comes from the graph itself, so none is missing (None).
        found = cast(tuple[Vectors, ...], self._index.get(ids, "f32"))
        return np.stack(found).astype(np.float32, copy=False)


# --- tiers --------------------------------------------------------------------------------------


@dataclass
class _Rebuild:
    """A rebuild in progress: the changes made since its snapshot, replayed before the swap."""

    changes: list[tuple[Ids, Vectors | None]] = field(default_factory=list)  # (ids, None) = removed
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class TieredIndex:
    """Exact search below `hnsw_threshold` vectors, HNSW at or above (down again below half).

    `on_rebuilt` is called (from the rebuilding thread) after a rebuild has been swapped in, so the
    owner can persist the new graph.
    """

    def __init__(
        self,
        dimension: int,
        *,
        hnsw_threshold: int = 100_000,
        params: HnswParams | None = None,
        background_min: int = BACKGROUND_MIN,
        on_rebuilt: Callable[[], None] | None = None,
    ) -> None:
        self.dimension = dimension
        self.hnsw_threshold = hnsw_threshold
        self.params = params or HnswParams()
        self.background_min = background_min
        self.on_rebuilt = on_rebuilt
        self._active: ExactIndex | HnswIndex = ExactIndex(dimension)
        self._rebuild: _Rebuild | None = None
        self._lock = threading.Lock()  # guards _active and _rebuild against the rebuilding thread
        self.dirty = False  # changed since the last save or load

    def adopt(self, graph: HnswIndex) -> None:
        """Serves `graph` (e.g. loaded from a file) in place of everything held so far."""
        if graph.dimension != self.dimension:
            raise ValueError(f"graph of dimension {graph.dimension} in an index of {self.dimension}")
        with self._lock:
            self._cancel_rebuild()
            self._active = graph
            self.dirty = False

    @property
    def tier(self) -> Tier:
        return "hnsw" if isinstance(self._active, HnswIndex) else "exact"

    @property
    def rebuilding(self) -> bool:
        return self._rebuild is not None

    def __len__(self) -> int:
        return len(self._active)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        vectors = _check(vectors, self.dimension)
        with self._lock:
            self._active.add(ids, vectors)
            self._log(ids, vectors.copy())
        self._rebuild_if_due()

    def remove(self, ids: Ids) -> None:
        ids = np.asarray(ids, np.int64)
        with self._lock:
            self._active.remove(ids)
            self._log(ids, None)
            if isinstance(self._active, HnswIndex) and len(self._active) < self.hnsw_threshold // 2:
                self._cancel_rebuild()
                self._active = ExactIndex.from_arrays(*self._active.contents())
                self.dirty = True
        self._rebuild_if_due()

    def search(self, vector: Vectors, limit: int) -> tuple[Ids, Vectors]:
        return self._active.search(vector, limit)

    def contents(self) -> tuple[Ids, Vectors]:
        return self._active.contents()

    def save(self, path: Path) -> bool:
        """Writes the HNSW graph to `path`; False (nothing written) when the exact tier serves
        or the graph holds removed vectors."""
        active = self._active
        if not isinstance(active, HnswIndex) or not active.save(path):
            return False
        self.dirty = False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Waits for a rebuild in progress; True when none is left."""
        rebuild = self._rebuild
        return rebuild is None or rebuild.done.wait(timeout)

    def close(self) -> None:
        """Abandons a rebuild in progress (its thread stops at its next chunk)."""
        with self._lock:
            self._cancel_rebuild()

    def _log(self, ids: Ids, vectors: Vectors | None) -> None:
        self.dirty = True
        if self._rebuild is not None:
            self._rebuild.changes.append((ids.copy(), vectors))

    def _cancel_rebuild(self) -> None:
        if self._rebuild is not None:
            self._rebuild.cancelled = True
            self._rebuild.done.set()
            self._rebuild = None

    def _rebuild_due(self) -> bool:
        active = self._active
        if self._rebuild is not None:
            return False
        if isinstance(active, ExactIndex):
            return len(active) >= self.hnsw_threshold
        return active.tombstones > TOMBSTONE_SHARE * max(len(active), 1)

    def _rebuild_if_due(self) -> None:
        with self._lock:
            if not self._rebuild_due():
                return
            rebuild = _Rebuild()
            self._rebuild = rebuild
            ids, vectors = self._active.contents()
        log.info("building an HNSW graph of %d vectors", len(ids))
        if len(ids) >= self.background_min:
            threading.Thread(target=self._build, args=(rebuild, ids, vectors), daemon=True).start()
        else:
            self._build(rebuild, ids, vectors)

    def _build(self, rebuild: _Rebuild, ids: Ids, vectors: Vectors) -> None:
        try:
            graph = HnswIndex(self.dimension, self.params)
            for start in range(0, len(ids), BUILD_CHUNK):
                if rebuild.cancelled:
                    return
                graph.add(ids[start : start + BUILD_CHUNK], vectors[start : start + BUILD_CHUNK])
            with self._lock:
                if rebuild.cancelled:
                    return
                _replay(graph, rebuild.changes)
                self._active = graph
                self._rebuild = None
                self.dirty = True
            log.info("HNSW graph of %d vectors in service", len(graph))
        except Exception:
            log.exception("building an HNSW graph failed; the previous index keeps serving")
            with self._lock:
                if self._rebuild is rebuild:
                    self._rebuild = None
            return
        finally:
            rebuild.done.set()
        if self.on_rebuilt is not None:
            self.on_rebuilt()


def _replay(graph: HnswIndex, changes: list[tuple[Ids, Vectors | None]]) -> None:
    for ids, vectors in changes:
        if vectors is None:
            graph.remove(ids)
        else:
            graph.add(ids, vectors, threads=1)
