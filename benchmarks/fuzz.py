"""Coverage-guided fuzzing (atheris/libFuzzer) of the request parser and the image decoder.

Each target runs in its own process for a bounded time and reports executions and crashes. A
crash is any exception other than an OpsisError (what a caller would see as a 4xx), or an input
that runs past --timeout seconds (a hang). Crashing inputs are saved under --crashes.

    python benchmarks/fuzz.py --seconds 60            # both targets, 60 s each
    python benchmarks/fuzz.py --target image --seconds 600
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGETS = ("request", "image")
# Operations whose inputs cover the model's shapes: blobs, nested structures, lists, enums, numbers.
OPERATIONS = ("DetectFaces", "IndexFaces", "SearchFacesByImage", "CompareFaces", "ListFaces", "CreateCollection")
SEED_REQUESTS = {
    "DetectFaces": {"Image": {"Bytes": "/9j/4AAQ"}, "Attributes": ["ALL"]},
    "IndexFaces": {"CollectionId": "c1", "Image": {"S3Object": {"Bucket": "b", "Name": "n.jpg"}}, "MaxFaces": 3},
    "SearchFacesByImage": {"CollectionId": "c1", "Image": {"Bytes": "iVBORw0K"}, "FaceMatchThreshold": 80.5},
    "CompareFaces": {"SourceImage": {"Bytes": "AA=="}, "TargetImage": {"Bytes": "AA=="}, "QualityFilter": "AUTO"},
    "ListFaces": {"CollectionId": "c1", "MaxResults": 10, "NextToken": "abc", "FaceIds": ["x"]},
    "CreateCollection": {"CollectionId": "c1", "Tags": {"k": "v"}},
}


def request_target() -> Callable[[bytes], None]:
    from opsis.api.protocol import parse_request
    from opsis.service_model import operation_model

    models = [operation_model(name) for name in OPERATIONS]

    def run(data: bytes) -> None:
        if not data:
            return
        parse_request(models[data[0] % len(models)], data[1:])

    return run


def image_target() -> Callable[[bytes], None]:
    from opsis.ops.images import decode_checked

    def run(data: bytes) -> None:
        decode_checked(data)

    return run


def seeds(target: str, directory: Path) -> None:
    """A few valid inputs for libFuzzer to mutate from."""
    directory.mkdir(parents=True, exist_ok=True)
    if target == "request":
        for index, name in enumerate(OPERATIONS):
            body = json.dumps(SEED_REQUESTS[name]).encode()
            (directory / f"{name}.json").write_bytes(bytes([index]) + body)
        (directory / "nested.json").write_bytes(b"\x00" + b'{"Image": ' + b"[" * 2000)  # once a RecursionError
        return
    from PIL import Image

    images: list[tuple[str, tuple[int, int], str, dict[str, Any]]] = [
        ("RGB", (96, 96), "JPEG", {"quality": 50}),
        ("RGB", (100, 90), "JPEG", {"progressive": True}),
        ("L", (81, 81), "JPEG", {}),
        ("RGBA", (90, 90), "PNG", {}),
        ("P", (90, 82), "PNG", {"transparency": 0}),
        ("I;16", (85, 85), "PNG", {}),
    ]
    for mode, size, fmt, extra in images:
        buffer = io.BytesIO()
        image = Image.new(mode, size, 128 if mode in ("L", "P", "I;16") else (200, 120, 40, 255)[: len(mode)])
        if fmt == "JPEG" and mode == "RGB":
            exif = Image.Exif()
            exif[0x0112] = 6
            image.save(buffer, fmt, exif=exif.tobytes(), **extra)
        else:
            image.save(buffer, fmt, **extra)
        (directory / f"{mode.replace(';', '')}-{size[0]}.{fmt.lower()}").write_bytes(buffer.getvalue())


def child(target: str, seconds: float, *, timeout: int, corpus: Path, crashes: Path, stats: Path) -> None:
    """Run in the fuzzing process: catch every input's exception, count, save crashers, stop on time."""
    import atheris

    with atheris.instrument_imports(include=["opsis", "PIL", "json"]):
        from opsis.errors import OpsisError

        run = request_target() if target == "request" else image_target()
    counts: dict[str, Any] = {"executions": 0, "crashes": 0, "kinds": {}}
    deadline = time.monotonic() + seconds

    def write_stats() -> None:
        stats.write_text(json.dumps(counts))

    def one(data: bytes) -> None:
        counts["executions"] += 1
        try:
            run(data)
        except OpsisError:
            pass
        except Exception as error:  # a crash: the server would answer 500
            where = traceback.extract_tb(error.__traceback__)[-1]
            kind = f"{type(error).__name__} at {Path(where.filename).name}:{where.lineno}"
            if kind not in counts["kinds"]:
                crashes.mkdir(parents=True, exist_ok=True)
                (crashes / f"{target}-{len(counts['kinds'])}.bin").write_bytes(data)
                counts["kinds"][kind] = f"{error}"[:200]
            counts["crashes"] += 1
        if counts["executions"] % 500 == 0 or time.monotonic() > deadline:
            write_stats()
            if time.monotonic() > deadline:
                os._exit(0)

    write_stats()
    atheris.Setup(
        [sys.argv[0], f"-timeout={timeout}", "-rss_limit_mb=3072", "-max_len=65536", str(corpus)],
        one,
    )
    atheris.Fuzz()


def fuzz(target: str, seconds: float, timeout: int = 10, crashes: Path | None = None) -> dict[str, Any]:
    """Fuzz `target` for `seconds` in a child process; its executions, crashes and their kinds."""
    crashes = crashes or Path(tempfile.gettempdir()) / "opsis-fuzz-crashes"
    with tempfile.TemporaryDirectory(prefix=f"opsis-fuzz-{target}-") as tmp:
        corpus, stats = Path(tmp) / "corpus", Path(tmp) / "stats.json"
        seeds(target, corpus)
        command = [sys.executable, __file__, "--child", target, "--seconds", str(seconds)]
        command += [
            "--timeout",
            str(timeout),
            "--corpus",
            str(corpus),
            "--crashes",
            str(crashes),
            "--stats",
            str(stats),
        ]
        process = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
        result: dict[str, Any] = json.loads(stats.read_text()) if stats.exists() else {"executions": 0, "kinds": {}}
        result.setdefault("crashes", 0)
        if process.returncode != 0:  # libFuzzer stopped the process: a hang, out of memory or a native crash
            tail = [line for line in process.stderr.splitlines() if "ERROR" in line or "timeout" in line.lower()]
            result["crashes"] += 1
            result["kinds"][f"process exit {process.returncode}"] = " | ".join(tail[-3:])[:300]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", choices=TARGETS, action="append", help="default: all")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a hang")
    parser.add_argument("--crashes", type=Path, default=Path(tempfile.gettempdir()) / "opsis-fuzz-crashes")
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(
            args.child, args.seconds, timeout=args.timeout, corpus=args.corpus, crashes=args.crashes, stats=args.stats
        )
        return
    for target in args.target or TARGETS:
        result = fuzz(target, args.seconds, args.timeout, args.crashes)
        print(f"fuzz {target:8s} {args.seconds:.0f} s: {result['executions']} executions, {result['crashes']} crashes")
        for kind, message in result["kinds"].items():
            print(f"    {kind}: {message}")
    print(f"crashing inputs (if any) under {args.crashes}")


if __name__ == "__main__":
    main()
