"""The `opsis` command: run the server, or run an operation on local files."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from opsis.config import Settings
from opsis.errors import OpsisError


@click.group()
@click.version_option(package_name="opsis")
def main() -> None:
    """Opsis: self-hosted image analysis with Amazon Rekognition's API."""


@main.command()
@click.option("--host", help="Address to bind (env OPSIS_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port (env OPSIS_PORT, default 8085).")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data directory (env OPSIS_DATA_DIR, default ./.opsis)."
)
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Serve Rekognition's API over HTTP."""
    import uvicorn

    from opsis.api.auth import PROFILE, load_key_ring
    from opsis.api.server import create_app
    from opsis.ops.context import Context

    settings = Settings.load(host=host, port=port, data_dir=data_dir)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = load_key_ring(settings)
    ctx = Context.create(settings)
    ctx.warm_up()
    click.echo(
        f"Opsis serving Rekognition on http://{settings.host}:{settings.port} "
        f"({len(keys)} access key(s); credentials file {settings.credentials_file.resolve()}, profile {PROFILE!r})",
        err=True,
    )
    uvicorn.run(create_app(ctx, keys), host=settings.host, port=settings.port, log_level=settings.log_level)


@main.command("prepare-models")
def prepare_models() -> None:
    """Load every model once, converting package weights to ONNX into the model cache (offline)."""
    from opsis.ops.context import Context

    settings = Settings.load()
    Context.create(settings).warm_up()
    click.echo(f"Models ready; converted files cached in {settings.model_cache_dir}")


@main.command("detect-faces")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--attributes", default="DEFAULT", show_default=True, help="DEFAULT, ALL or attribute names, comma-separated."
)
@click.option("--json", "as_json", is_flag=True, help="Print the exact DetectFaces response as JSON.")
def detect_faces(photo: Path, attributes: str, as_json: bool) -> None:
    """Find the faces in PHOTO (JPEG or PNG)."""
    from opsis import Opsis

    try:
        response = Opsis().detect_faces(photo, tuple(a.strip() for a in attributes.split(",")))
    except OpsisError as error:
        click.echo(f"Error ({error.code}): {error.message}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(response, indent=2))
    else:
        console = Console()
        # Piped output has no terminal width to fit; do not wrap the table's columns into 80.
        (console if console.is_terminal else Console(width=160)).print(_faces_table(photo, response))


def _faces_table(photo: Path, response: dict[str, Any]) -> Table:
    table = Table(title=f"{len(response['FaceDetails'])} face(s) in {photo.name}")
    for column in (
        "#",
        "Confidence",
        "Left",
        "Top",
        "Width",
        "Height",
        "Roll",
        "Yaw",
        "Pitch",
        "Brightness",
        "Sharpness",
    ):
        table.add_column(column, justify="right")
    for number, face in enumerate(response["FaceDetails"], start=1):
        box, pose, quality = face["BoundingBox"], face.get("Pose", {}), face.get("Quality", {})
        table.add_row(
            str(number),
            f"{face['Confidence']:.1f}",
            *(f"{box[k]:.3f}" for k in ("Left", "Top", "Width", "Height")),
            *(f"{pose[k]:.0f}" if k in pose else "" for k in ("Roll", "Yaw", "Pitch")),
            *(f"{quality[k]:.0f}" if k in quality else "" for k in ("Brightness", "Sharpness")),
        )
    return table
