"""Calibrate distance -> Similarity for the face embedder on the shared identity sets.

Every same-identity pair of photos within a set is a genuine pair and every different-identity
pair an impostor pair (pairs across sets are left out: two sets may hold the same celebrity under
different labels). A Similarity threshold is pinned to a false-match rate (FMR): 80 -> 1e-2,
90 -> 1e-3, 95 -> 1e-4, 99 -> 1e-5. Where fewer than MIN_TAIL_SAMPLES impostors lie below the
rate, the distance comes from a normal fit to the impostor tail, and never exceeds the smallest
impostor distance observed, so the claimed FMR is never better than the data shows.

    .venv/bin/python benchmarks/calibrate_similarity.py --data ../shared/data [--write]

prints the anchors with the measured FMR and false-non-match rate (FNMR) at each threshold, and
with --write stores them in opsis/vision/calibration/<model>.json, which the service ships.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import NormalDist

import numpy as np
from common import argument_parser
from identity_sets import load_identity_sets, pair_distances
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from opsis.vision.calibration import calibration_path
from opsis.vision.runners.dlib_resnet import DlibResNetEmbedder

REPO = Path(__file__).resolve().parent.parent
TARGET_FMR = {80.0: 1e-2, 90.0: 1e-3, 95.0: 1e-4, 99.0: 1e-5}
MIN_TAIL_SAMPLES = 20


def distance_at_fmr(impostor: NDArray[np.float64], fmr: float) -> float:
    """The distance below which a share `fmr` of impostor pairs falls."""
    count = len(impostor)
    if fmr * count >= MIN_TAIL_SAMPLES:
        return float(np.quantile(impostor, fmr))
    shares = np.geomspace(MIN_TAIL_SAMPLES / count, 0.05, 24)
    scores = [NormalDist().inv_cdf(float(share)) for share in shares]
    slope, intercept = np.polyfit(scores, np.quantile(impostor, shares), 1)
    fitted = intercept + slope * NormalDist().inv_cdf(fmr)
    return float(min(fitted, impostor.min()))


def anchors(impostor: NDArray[np.float64]) -> list[tuple[float, float]]:
    """(distance, similarity) pairs, distance increasing, from 100 at 0 down to 0."""
    points = [(0.0, 100.0)]
    points += [
        (distance_at_fmr(impostor, fmr), similarity) for similarity, fmr in sorted(TARGET_FMR.items(), reverse=True)
    ]
    points += [(float(np.median(impostor)), 50.0), (float(impostor.max()) * 1.25, 0.0)]
    return [(round(distance, 5), similarity) for distance, similarity in points]


def measured(
    points: list[tuple[float, float]], genuine: NDArray[np.float64], impostor: NDArray[np.float64]
) -> dict[str, dict[str, float]]:
    table = {}
    for distance, similarity in points:
        if similarity in TARGET_FMR:
            table[f"{similarity:.0f}"] = {
                "distance": distance,
                "target_fmr": TARGET_FMR[similarity],
                "false_matches": int((impostor <= distance).sum()),
                "fmr": float((impostor <= distance).mean()),
                "fnmr": float((genuine > distance).mean()),
            }
    return table


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "opsis" / "models")
    parser.add_argument("--write", action="store_true", help="store the anchors in the package")
    args = parser.parse_args()
    sets = load_identity_sets(args.data, args.cache)
    genuine = np.concatenate([pair_distances(s)[0] for s in sets])
    impostor = np.concatenate([pair_distances(s)[1] for s in sets])
    points = anchors(impostor)
    thresholds = measured(points, genuine, impostor)
    table = Table(title=f"Similarity calibration: {len(genuine)} genuine, {len(impostor)} impostor pairs")
    for column in ("Similarity", "distance", "target FMR", "false matches", "measured FMR", "FNMR"):
        table.add_column(column, justify="right")
    for similarity, row in thresholds.items():
        table.add_row(
            similarity,
            f"{row['distance']:.4f}",
            f"{row['target_fmr']:.0e}",
            str(row["false_matches"]),
            f"{row['fmr']:.2e}",
            f"{row['fnmr']:.3f}",
        )
    Console().print(table)
    if args.write:
        version = DlibResNetEmbedder.version
        document = {
            "model_version": version,
            "anchors": points,
            "calibration": {
                "sets": [s.name for s in sets],
                "photos": int(sum(s.found.sum() for s in sets)),
                "genuine_pairs": len(genuine),
                "impostor_pairs": len(impostor),
                "thresholds": thresholds,
            },
        }
        target = REPO / calibration_path(version)
        target.write_text(json.dumps(document, indent=2) + "\n")
        Console().print(f"wrote {target}")


if __name__ == "__main__":
    main()
