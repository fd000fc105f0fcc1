"""The `opsis` command: run the server, or run an operation on local files and the local store.

Operation commands are thin: they build an operation's request parameters, run it in-process through
`opsis.Opsis` (the same handlers and validation as the server) and render the response, as a table
by default or as the exact response with `--json`. The ones that touch face collections open the
SQLite store under `--data-dir`, which a running `opsis serve` on the same directory shares.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from opsis import Opsis
from opsis.config import Settings
from opsis.errors import OpsisError, UnknownOperationException
from opsis.store.sealing import SealError

Response = dict[str, Any]
Render = Callable[[Response], RenderableType]

QUALITY_FILTERS = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
# What Rekognition's ExternalImageId allows: `[a-zA-Z0-9_.\-:]+`, at most 255 characters.
NOT_IN_EXTERNAL_IMAGE_ID = re.compile(r"[^a-zA-Z0-9_.\-:]+")
MAX_EXTERNAL_IMAGE_ID = 255
# The AWS CLI's prefix for "the bytes of this file" in a blob parameter.
FILE_BYTES = "fileb://"

PHOTO = click.Path(exists=True, dir_okay=False, path_type=Path)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory: collections, credentials, local buckets (env OPSIS_DATA_DIR, default ./.opsis).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the exact API response as JSON.")


def quality_filter_option(operation_default: str) -> Callable[[Any], Any]:
    """--quality-filter; left out of the request unless given, so the operation's own default applies."""
    return click.option(
        "--quality-filter",
        type=click.Choice(QUALITY_FILTERS, case_sensitive=False),
        help=f"Leave out faces below this quality.  [default: {operation_default}]",
    )


@click.group()
@click.version_option(package_name="opsis")
def main() -> None:
    """Opsis: self-hosted image analysis with Amazon Rekognition's API."""


@main.command()
@click.option("--host", help="Address to bind (env OPSIS_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port (env OPSIS_PORT, default 8085).")
@data_dir_option
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Serve Rekognition's API over HTTP."""
    import uvicorn

    from opsis.api.auth import PROFILE, load_key_ring
    from opsis.api.server import create_app
    from opsis.jobs.pool import WorkerPool
    from opsis.ops.context import Context

    settings = Settings.load(host=host, port=port, data_dir=data_dir)
    if (settings.tls_certfile is None) != (settings.tls_keyfile is None):
        raise click.UsageError("OPSIS_TLS_CERTFILE and OPSIS_TLS_KEYFILE must be set together")
    scheme = "https" if settings.tls_certfile else "http"
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = load_key_ring(settings)
    ctx = Context.create(settings)
    ctx.warm_up()
    try:
        # Open the store now, so a bad OPSIS_STORE, an unreachable database or a missing or wrong
        # OPSIS_VECTOR_KEY stops the start with its reason, not the first request with a 500.
        ctx.store.list_collections(None, 1)
    except Exception as error:
        raise click.ClickException(f"The face store could not be opened: {error}") from None
    click.echo(
        f"Opsis serving Rekognition on {scheme}://{settings.host}:{settings.port} "
        f"({len(keys)} access key(s); credentials file {settings.credentials_file.resolve()}, profile {PROFILE!r})",
        err=True,
    )
    workers = WorkerPool(settings)
    workers.start()
    try:
        uvicorn.run(
            create_app(ctx, keys),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
        )
    finally:
        workers.stop()


@main.command("prepare-models")
def prepare_models() -> None:
    """Load every model once, converting package weights to ONNX into the model cache (offline)."""
    from opsis.ops.context import Context

    settings = Settings.load()
    Context.create(settings).prepare_models()
    click.echo(f"Models ready; converted files cached in {settings.model_cache_dir}")


# --- running operations ------------------------------------------------------------------------------


@contextmanager
def _session(data_dir: Path | None = None) -> Iterator[Opsis]:
    """An in-process Opsis on the data directory; an OpsisError ends the command with exit status 1."""
    try:
        with Opsis(Settings.load(data_dir=data_dir)) as opsis:
            yield opsis
    except OpsisError as error:
        click.echo(f"Error ({error.code}): {error.message}", err=True)
        sys.exit(1)
    except SealError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)


def _run(
    operation: str,
    params: dict[str, Any],
    *,
    as_json: bool,
    render: Render,
    data_dir: Path | None = None,
    merge: tuple[str, ...] = (),
) -> None:
    """Run one operation and print its response; `merge` names the lists to gather over every page."""
    with _session(data_dir) as opsis:
        response = _all_pages(opsis, operation, params, merge) if merge else opsis.call(operation, params)
    _output(response, as_json, render)


def _all_pages(opsis: Opsis, operation: str, params: dict[str, Any], lists: tuple[str, ...]) -> Response:
    """The response with every page's `lists` joined, following NextToken as the AWS CLI does."""
    merged = opsis.call(operation, params)
    token = merged.pop("NextToken", None)
    while token:
        page = opsis.call(operation, {**params, "NextToken": token})
        token = page.pop("NextToken", None)
        for key in lists:
            merged[key] = [*merged[key], *page[key]]
    return merged


def _output(response: Any, as_json: bool, render: Render) -> None:
    if as_json:
        click.echo(_to_json(response))
    else:
        console = Console()
        # Piped output has no terminal width to fit; do not wrap the table's columns into 80.
        (console if console.is_terminal else Console(width=160)).print(render(response))


def _to_json(value: Any) -> str:
    """JSON as the AWS CLI prints it: datetimes in ISO 8601, bytes in base64."""
    return json.dumps(value, indent=2, default=_json_value)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _image(photo: Path) -> dict[str, Any]:
    return {"Image": {"Bytes": photo.read_bytes()}}


def _optional(**params: Any) -> dict[str, Any]:
    """The parameters that were given (None means "leave it to the operation's default")."""
    return {name: value for name, value in params.items() if value is not None}


# --- single images -------------------------------------------------------------------------------


@main.command("detect-faces")
@click.argument("photo", type=PHOTO)
@click.option(
    "--attributes", default="DEFAULT", show_default=True, help="DEFAULT, ALL or attribute names, comma-separated."
)
@json_option
def detect_faces(photo: Path, attributes: str, as_json: bool) -> None:
    """Find the faces in PHOTO (JPEG or PNG)."""
    params = {**_image(photo), "Attributes": [a.strip() for a in attributes.split(",")]}
    _run("DetectFaces", params, as_json=as_json, render=lambda r: _faces_table(photo, r))


@main.command("compare-faces")
@click.argument("source", type=PHOTO)
@click.argument("target", type=PHOTO)
@click.option("--similarity-threshold", type=float, help="Lowest similarity of a match. [default: 80]")
@quality_filter_option("NONE")
@json_option
def compare_faces(
    source: Path, target: Path, similarity_threshold: float | None, quality_filter: str | None, as_json: bool
) -> None:
    """Compare the largest face in SOURCE with every face in TARGET."""
    params = {
        "SourceImage": {"Bytes": source.read_bytes()},
        "TargetImage": {"Bytes": target.read_bytes()},
        **_optional(SimilarityThreshold=similarity_threshold, QualityFilter=quality_filter),
    }
    _run("CompareFaces", params, as_json=as_json, render=lambda r: _comparison_table(source, target, r))


@main.command("detect-text")
@click.argument("photo", type=PHOTO)
@click.option("--min-confidence", type=float, help="Leave out words below this confidence (0-100). [default: 80]")
@json_option
def detect_text(photo: Path, min_confidence: float | None, as_json: bool) -> None:
    """Read the lines and words of text in PHOTO (at most 100 words)."""
    params = _image(photo)
    if min_confidence is not None:
        params["Filters"] = {"WordFilter": {"MinConfidence": min_confidence}}
    _run("DetectText", params, as_json=as_json, render=lambda r: _text_table(photo, r))


@main.command("detect-labels")
@click.argument("photo", type=PHOTO)
@click.option("--min-confidence", type=float, help="Leave out labels below this confidence (0-100). [default: 55]")
@click.option("--max-labels", type=int, help="Return at most this many labels, most confident first.")
@click.option("--image-properties", is_flag=True, help="Also report quality and dominant colours (IMAGE_PROPERTIES).")
@json_option
def detect_labels(
    photo: Path, min_confidence: float | None, max_labels: int | None, image_properties: bool, as_json: bool
) -> None:
    """Label the objects in PHOTO (COCO's 80 classes and their parent labels)."""
    features = ["GENERAL_LABELS", "IMAGE_PROPERTIES"] if image_properties else ["GENERAL_LABELS"]
    params = {**_image(photo), "Features": features, **_optional(MinConfidence=min_confidence, MaxLabels=max_labels)}
    _run("DetectLabels", params, as_json=as_json, render=lambda r: _labels_view(photo, r))


@main.command("detect-moderation-labels")
@click.argument("photo", type=PHOTO)
@click.option("--min-confidence", type=float, help="Leave out labels below this confidence (0-100). [default: 50]")
@json_option
def detect_moderation_labels(photo: Path, min_confidence: float | None, as_json: bool) -> None:
    """Flag unsafe content in PHOTO."""
    params = {**_image(photo), **_optional(MinConfidence=min_confidence)}

    def render(r: Response) -> RenderableType:
        table = Table("Name", "Parent", "Level", "Confidence", title=f"Moderation labels in {escape(photo.name)}")
        for label in r["ModerationLabels"]:
            level = str(label.get("TaxonomyLevel", ""))
            table.add_row(label["Name"], label["ParentName"], level, f"{label['Confidence']:.1f}")
        return table

    _run("DetectModerationLabels", params, as_json=as_json, render=render)


@main.command("recognize-celebrities")
@click.argument("photo", type=PHOTO)
@data_dir_option
@json_option
def recognize_celebrities(photo: Path, data_dir: Path | None, as_json: bool) -> None:
    """Name the faces in PHOTO that match the imported celebrity gallery."""

    def render(r: Response) -> RenderableType:
        title = f"Celebrities in {escape(photo.name)}"
        table = Table("Id", "Name", "Match", "Left", "Top", "Width", "Height", title=title)
        for face in r["CelebrityFaces"]:
            box = face["Face"]["BoundingBox"]
            table.add_row(face["Id"], escape(face["Name"]), f"{face['MatchConfidence']:.1f}", *_box(box))
        table.caption = f"{len(r['UnrecognizedFaces'])} face(s) not recognised"
        return table

    _run("RecognizeCelebrities", _image(photo), as_json=as_json, render=render, data_dir=data_dir)


# --- collections ---------------------------------------------------------------------------------


@main.command("create-collection")
@click.argument("collection_id")
@data_dir_option
@json_option
def create_collection(collection_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Create the face collection COLLECTION_ID."""

    def render(r: Response) -> RenderableType:
        return Text(f"Created collection {collection_id} ({r['CollectionArn']}, face model {r['FaceModelVersion']})")

    _run("CreateCollection", {"CollectionId": collection_id}, as_json=as_json, render=render, data_dir=data_dir)


@main.command("describe-collection")
@click.argument("collection_id")
@data_dir_option
@json_option
def describe_collection(collection_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Show a collection's ARN, face and user counts, model version and creation time."""
    _run(
        "DescribeCollection",
        {"CollectionId": collection_id},
        as_json=as_json,
        render=lambda r: _properties_table(f"Collection {collection_id}", r),
        data_dir=data_dir,
    )


@main.command("list-collections")
@data_dir_option
@json_option
def list_collections(data_dir: Path | None, as_json: bool) -> None:
    """List every collection (all pages)."""
    _run(
        "ListCollections",
        {},
        as_json=as_json,
        render=_collections_table,
        data_dir=data_dir,
        merge=("CollectionIds", "FaceModelVersions"),
    )


@main.command("delete-collection")
@click.argument("collection_id")
@data_dir_option
@json_option
def delete_collection(collection_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Delete a collection with all its faces and users."""
    _run(
        "DeleteCollection",
        {"CollectionId": collection_id},
        as_json=as_json,
        render=lambda r: Text(f"Deleted collection {collection_id}"),
        data_dir=data_dir,
    )


# --- faces in collections ------------------------------------------------------------------------


@main.command("index-faces")
@click.argument("collection_id")
@click.argument("photos", nargs=-1, required=True, type=PHOTO)
@click.option("--external-image-id", help="ExternalImageId of the faces. [default: the photo's file name stem]")
@click.option("--max-faces", type=int, help="Index at most this many faces per photo, largest first.")
@quality_filter_option("AUTO")
@data_dir_option
@json_option
def index_faces(
    *,
    collection_id: str,
    photos: tuple[Path, ...],
    external_image_id: str | None,
    max_faces: int | None,
    quality_filter: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Add the faces of each PHOTO to a collection, one IndexFaces per photo.

    With --json, one photo prints its IndexFaces response; several print a list of them, in order.
    """
    from rich.progress import Progress

    common = {"CollectionId": collection_id, **_optional(MaxFaces=max_faces, QualityFilter=quality_filter)}
    responses: list[tuple[Path, Response]] = []
    with (
        _session(data_dir) as opsis,
        Progress(console=Console(stderr=True), transient=True, disable=len(photos) < 2) as progress,
    ):
        for photo in progress.track(photos, description="Indexing faces"):
            params = {**common, **_image(photo), **_optional(ExternalImageId=external_image_id or _external_id(photo))}
            try:
                responses.append((photo, opsis.call("IndexFaces", params)))
            except OpsisError as error:  # name the photo; the ones before it stay indexed
                raise type(error)(f"{photo}: {error.message}") from error
    result = responses[0][1] if len(responses) == 1 else [response for _, response in responses]
    _output(result, as_json, lambda _: _indexed_table(collection_id, responses))


def _external_id(photo: Path) -> str | None:
    """The photo's file name stem in ExternalImageId's alphabet ("Me & you.jpg" -> "Me_you")."""
    return NOT_IN_EXTERNAL_IMAGE_ID.sub("_", photo.stem).strip("_")[:MAX_EXTERNAL_IMAGE_ID] or None


@main.command("list-faces")
@click.argument("collection_id")
@click.option("--user-id", help="Only the faces associated with this user.")
@data_dir_option
@json_option
def list_faces(collection_id: str, user_id: str | None, data_dir: Path | None, as_json: bool) -> None:
    """List the faces of a collection (all pages)."""
    _run(
        "ListFaces",
        {"CollectionId": collection_id, **_optional(UserId=user_id)},
        as_json=as_json,
        render=lambda r: _stored_faces_table(f"{len(r['Faces'])} face(s) in {collection_id}", r["Faces"]),
        data_dir=data_dir,
        merge=("Faces",),
    )


@main.command("delete-faces")
@click.argument("collection_id")
@click.argument("face_ids", nargs=-1, required=True)
@data_dir_option
@json_option
def delete_faces(collection_id: str, face_ids: tuple[str, ...], data_dir: Path | None, as_json: bool) -> None:
    """Delete faces from a collection by FaceId."""
    _run(
        "DeleteFaces",
        {"CollectionId": collection_id, "FaceIds": list(face_ids)},
        as_json=as_json,
        render=lambda r: _outcomes_table(
            f"Deleted {len(r['DeletedFaces'])} of {len(face_ids)} face(s) from {collection_id}",
            [(face_id, "deleted") for face_id in r["DeletedFaces"]],
            r["UnsuccessfulFaceDeletions"],
        ),
        data_dir=data_dir,
    )


@main.command("search-faces-by-image")
@click.argument("collection_id")
@click.argument("photo", type=PHOTO)
@click.option("--face-match-threshold", type=float, help="Lowest similarity of a match. [default: 80]")
@click.option("--max-faces", type=int, help="Most matches to return. [default: 80]")
@quality_filter_option("NONE")
@data_dir_option
@json_option
def search_faces_by_image(
    *,
    collection_id: str,
    photo: Path,
    face_match_threshold: float | None,
    max_faces: int | None,
    quality_filter: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Search a collection for the largest face in PHOTO."""
    params = {
        "CollectionId": collection_id,
        **_image(photo),
        **_optional(FaceMatchThreshold=face_match_threshold, MaxFaces=max_faces, QualityFilter=quality_filter),
    }
    _run(
        "SearchFacesByImage",
        params,
        as_json=as_json,
        render=lambda r: _face_matches_table(
            f"{len(r['FaceMatches'])} match(es) in {collection_id} for the largest face in {escape(photo.name)}", r
        ),
        data_dir=data_dir,
    )


@main.command("search-faces")
@click.argument("collection_id")
@click.argument("face_id")
@click.option("--face-match-threshold", type=float, help="Lowest similarity of a match. [default: 80]")
@click.option("--max-faces", type=int, help="Most matches to return. [default: 80]")
@data_dir_option
@json_option
def search_faces(
    *,
    collection_id: str,
    face_id: str,
    face_match_threshold: float | None,
    max_faces: int | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Search a collection for the faces like its face FACE_ID."""
    params = {
        "CollectionId": collection_id,
        "FaceId": face_id,
        **_optional(FaceMatchThreshold=face_match_threshold, MaxFaces=max_faces),
    }
    _run(
        "SearchFaces",
        params,
        as_json=as_json,
        render=lambda r: _face_matches_table(f"{len(r['FaceMatches'])} match(es) in {collection_id} for {face_id}", r),
        data_dir=data_dir,
    )


# --- users ---------------------------------------------------------------------------------------


@main.command("create-user")
@click.argument("collection_id")
@click.argument("user_id")
@data_dir_option
@json_option
def create_user(collection_id: str, user_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Create the user USER_ID in a collection."""
    _run(
        "CreateUser",
        {"CollectionId": collection_id, "UserId": user_id},
        as_json=as_json,
        render=lambda r: Text(f"Created user {user_id} in {collection_id}"),
        data_dir=data_dir,
    )


@main.command("associate-faces")
@click.argument("collection_id")
@click.argument("user_id")
@click.argument("face_ids", nargs=-1, required=True)
@click.option("--user-match-threshold", type=float, help="Lowest similarity to the user's faces so far. [default: 75]")
@data_dir_option
@json_option
def associate_faces(
    *,
    collection_id: str,
    user_id: str,
    face_ids: tuple[str, ...],
    user_match_threshold: float | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Associate faces of a collection with the user USER_ID."""
    params = {
        "CollectionId": collection_id,
        "UserId": user_id,
        "FaceIds": list(face_ids),
        **_optional(UserMatchThreshold=user_match_threshold),
    }
    _run(
        "AssociateFaces",
        params,
        as_json=as_json,
        render=lambda r: _outcomes_table(
            f"Associated {len(r['AssociatedFaces'])} of {len(face_ids)} face(s) with {user_id} "
            f"(user {r['UserStatus']})",
            [(face["FaceId"], "associated") for face in r["AssociatedFaces"]],
            r["UnsuccessfulFaceAssociations"],
        ),
        data_dir=data_dir,
    )


@main.command("search-users-by-image")
@click.argument("collection_id")
@click.argument("photo", type=PHOTO)
@click.option("--user-match-threshold", type=float, help="Lowest similarity of a match. [default: 80]")
@click.option("--max-users", type=int, help="Most users to return. [default: 10]")
@quality_filter_option("NONE")
@data_dir_option
@json_option
def search_users_by_image(
    *,
    collection_id: str,
    photo: Path,
    user_match_threshold: float | None,
    max_users: int | None,
    quality_filter: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Search a collection's users for the largest face in PHOTO."""
    params = {
        "CollectionId": collection_id,
        **_image(photo),
        **_optional(UserMatchThreshold=user_match_threshold, MaxUsers=max_users, QualityFilter=quality_filter),
    }
    _run(
        "SearchUsersByImage",
        params,
        as_json=as_json,
        render=lambda r: _user_matches_table(
            f"{len(r['UserMatches'])} user(s) in {collection_id} for the largest face in {escape(photo.name)}", r
        ),
        data_dir=data_dir,
    )


@main.command("list-users")
@click.argument("collection_id")
@data_dir_option
@json_option
def list_users(collection_id: str, data_dir: Path | None, as_json: bool) -> None:
    """List the users of a collection (all pages)."""
    _run(
        "ListUsers",
        {"CollectionId": collection_id},
        as_json=as_json,
        render=lambda r: _users_table(collection_id, r),
        data_dir=data_dir,
        merge=("Users",),
    )


@main.command("delete-user")
@click.argument("collection_id")
@click.argument("user_id")
@data_dir_option
@json_option
def delete_user(collection_id: str, user_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Delete a user; its faces stay in the collection, associated with no one."""
    _run(
        "DeleteUser",
        {"CollectionId": collection_id, "UserId": user_id},
        as_json=as_json,
        render=lambda r: Text(f"Deleted user {user_id} from {collection_id}"),
        data_dir=data_dir,
    )


# --- access keys ---------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Access keys for the HTTP API, each limited by an IAM-style policy.

    The key in <data-dir>/credentials (profile opsis) and OPSIS_ACCESS_KEY_ID keep full access.
    Keys made here are stored in <data-dir>/keys.db, their secrets encrypted with
    <data-dir>/master.key (or OPSIS_MASTER_KEY); a running server sees new and revoked keys at once.

    \b
        opsis keys create --name kiosk --allow SearchFacesByImage --collection staff
        opsis keys create --name tagger --allow 'rekognition:Detect*'
        opsis keys create --policy policy.json
    """


@keys.command("create")
@click.option("--name", default="", help="A label for the key, shown by `opsis keys list`.")
@click.option("--policy", "policy_source", help="An IAM policy document: a JSON file, or the JSON itself.")
@click.option(
    "--allow",
    "actions",
    multiple=True,
    help="Allow this action (SearchFacesByImage, rekognition:Detect*, rekognition:*); repeatable.",
)
@click.option(
    "--collection",
    "collections",
    multiple=True,
    help="Allow the --allow actions only on this collection (repeatable); without it, on every resource.",
)
@data_dir_option
@json_option
def create_key(
    *,
    name: str,
    policy_source: str | None,
    actions: tuple[str, ...],
    collections: tuple[str, ...],
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Create an access key; its secret is printed this once and cannot be shown again."""
    from opsis.api.policy import PolicyError, parse_policy, policy_from_document
    from opsis.service_model import service_model
    from opsis.store import open_key_store

    if policy_source is not None and (actions or collections):
        raise click.UsageError("give either --policy or --allow/--collection, not both")
    if collections and not actions:
        raise click.UsageError("--collection limits --allow actions: give at least one --allow")
    if policy_source is None and not actions:
        raise click.UsageError("give the key's rights: --allow ACTION [--collection ID] or --policy FILE|JSON")
    settings = Settings.load(data_dir=data_dir)
    known = [f"rekognition:{operation}" for operation in service_model().operation_names]
    try:
        if policy_source is not None:
            text = policy_source if policy_source.lstrip().startswith("{") else _read_policy_file(policy_source)
            policy = parse_policy(text, known)
        else:
            arn = f"arn:aws:rekognition:{settings.region}:{settings.account_id}:collection/"
            document = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [action if ":" in action else f"rekognition:{action}" for action in actions],
                        "Resource": [arn + collection for collection in collections] or "*",
                    }
                ],
            }
            policy = policy_from_document(document, known)
    except PolicyError as error:
        raise click.BadParameter(str(error), param_hint="--policy" if policy_source else "--allow") from None
    store = open_key_store(settings)
    try:
        access_key_id, secret = store.create(policy.to_json(), name)
    finally:
        store.close()
    if as_json:
        click.echo(
            _to_json(
                {"AccessKeyId": access_key_id, "SecretAccessKey": secret, "Name": name, "Policy": policy.document()}
            )
        )
        return
    click.echo(f"aws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}")
    click.echo("The secret is shown only now: Opsis keeps it encrypted and cannot print it again.", err=True)


def _read_policy_file(source: str) -> str:
    try:
        return Path(source).read_text()
    except OSError as error:
        message = f"{source} is neither JSON nor a readable file: {error}"
        raise click.BadParameter(message, param_hint="--policy") from None


@keys.command("list")
@data_dir_option
@json_option
def list_keys(data_dir: Path | None, as_json: bool) -> None:
    """List the keys made with `opsis keys create`, revoked ones too (never their secrets)."""
    from opsis.api.policy import stored_policy
    from opsis.store import open_key_store

    settings = Settings.load(data_dir=data_dir)
    store = open_key_store(settings)
    try:
        rows = [
            {
                "AccessKeyId": key.access_key_id,
                "Name": key.name,
                "Created": key.created_at,
                "Revoked": key.revoked_at,
                "Policy": stored_policy(key.policy_document).document(),
                "PolicySummary": stored_policy(key.policy_document).summary(),
            }
            for key in store.all()
        ]
    finally:
        store.close()
    _output(rows, as_json, lambda _: _keys_table(rows))


@keys.command("vector-key")
def print_vector_key() -> None:
    """Print a new random key for OPSIS_VECTOR_KEY (encryption of stored face vectors). Opsis never
    stores it: keep it safe, without it the collections cannot be opened."""
    from opsis.store.sealing import new_key as make_key

    click.echo(make_key())


@keys.command("revoke")
@click.argument("access_key_id")
@data_dir_option
def revoke_key(access_key_id: str, data_dir: Path | None) -> None:
    """Revoke ACCESS_KEY_ID for good: a running server refuses it from the next request on."""
    from opsis.store import open_key_store

    settings = Settings.load(data_dir=data_dir)
    store = open_key_store(settings)
    try:
        revoked = store.revoke(access_key_id)
    finally:
        store.close()
    if not revoked:
        click.echo(f"Error: no active key {access_key_id} in {settings.keys_db}", err=True)
        sys.exit(1)
    click.echo(f"Revoked {access_key_id}")


def _keys_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} access key(s)")
    for column in ("AccessKeyId", "Name", "Created", "Revoked", "Policy"):
        table.add_column(column)
    for row in rows:
        revoked = row["Revoked"]
        table.add_row(
            row["AccessKeyId"],
            escape(row["Name"]),
            f"{row['Created']:%Y-%m-%d %H:%M}",
            f"{revoked:%Y-%m-%d %H:%M}" if revoked else "",
            escape(row["PolicySummary"]),
        )
    return table


# --- the celebrity gallery -------------------------------------------------------------------------


@main.group()
def celebrities() -> None:
    """The celebrity gallery that RecognizeCelebrities and GetCelebrityInfo use.

    Opsis ships no gallery of real people: import your own. A gallery directory holds a manifest,
    celebrities.csv (or celebrities.json, a list of objects with the same keys), and face photos:

    \b
        name,id,urls,known_gender,photos
        Ada Lovelace,ada1815,https://example.org/ada,Female,photos/ada

    \b
    name          required; returned as Name
    id            letters and digits (at most 64); empty: derived from the name
    urls          space-separated; returned as Urls
    known_gender  Male, Female, Nonbinary, Unlisted or empty
    photos        ';'-separated JPEG/PNG files or folders, relative to the gallery directory

    Each photo should show the person alone (its largest face is used). Only face vectors are
    stored, never the photos. A face vector is biometric data: enrol only people who agreed to it
    or whose recognition your jurisdiction allows, with photos you have the right to use, and
    honour removal requests with `opsis celebrities remove`.
    """


@celebrities.command("import")
@click.argument("gallery_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
@json_option
def import_celebrities(gallery_dir: Path, data_dir: Path | None, as_json: bool) -> None:
    """Enrol everyone in GALLERY_DIR's manifest; importing an Id again replaces its record and faces."""
    from opsis.ops import celebrity_gallery

    with _session(data_dir) as opsis:
        imported = celebrity_gallery.import_gallery(opsis.ctx, gallery_dir)
    rows = [
        {
            "Id": entry.celebrity.celebrity_id,
            "Name": entry.celebrity.name,
            "Faces": entry.faces,
            "Skipped": [{"Photo": str(photo), "Reason": reason} for photo, reason in entry.skipped],
        }
        for entry in imported
    ]
    _output(rows, as_json, lambda _: _imported_celebrities_table(rows))


@celebrities.command("list")
@data_dir_option
@json_option
def list_celebrities(data_dir: Path | None, as_json: bool) -> None:
    """List the gallery's celebrities with their number of faces."""
    from opsis.ops import celebrity_gallery

    with _session(data_dir) as opsis:
        gallery = celebrity_gallery.list_gallery(opsis.ctx)
    rows = [
        {
            "Id": celebrity.celebrity_id,
            "Name": celebrity.name,
            "Urls": list(celebrity.urls),
            "KnownGender": celebrity.known_gender,
            "Faces": faces,
        }
        for celebrity, faces in gallery
    ]
    _output(rows, as_json, lambda _: _celebrities_table(rows))


@celebrities.command("remove")
@click.argument("celebrity_ids", nargs=-1)
@click.option("--all", "remove_all", is_flag=True, help="Remove the whole gallery.")
@data_dir_option
def remove_celebrities(celebrity_ids: tuple[str, ...], remove_all: bool, data_dir: Path | None) -> None:
    """Erase celebrities (records and face vectors) by Id, or the whole gallery with --all."""
    from opsis.ops import celebrity_gallery

    if remove_all == bool(celebrity_ids):
        raise click.UsageError("give celebrity Ids or --all, not both")
    with _session(data_dir) as opsis:
        if remove_all:
            click.echo(f"Removed the gallery ({celebrity_gallery.remove_gallery(opsis.ctx)} celebrities)")
        else:
            celebrity_gallery.remove_celebrities(opsis.ctx, celebrity_ids)
            click.echo(f"Removed {len(celebrity_ids)} celebrit{'y' if len(celebrity_ids) == 1 else 'ies'}")


# --- stored video --------------------------------------------------------------------------------

VIDEO_COMMANDS = {
    "detect-faces": "StartFaceDetection",
    "search-faces": "StartFaceSearch",
    "track-people": "StartPersonTracking",
    "detect-labels": "StartLabelDetection",
    "detect-text": "StartTextDetection",
    "detect-moderation-labels": "StartContentModeration",
    "detect-segments": "StartSegmentDetection",
    "recognize-celebrities": "StartCelebrityRecognition",
}


@main.group()
def video() -> None:
    """Stored-video jobs: start one on a local file or s3://BUCKET/KEY, watch it, read its results.

    Without --wait the job is queued for a running `opsis serve` (or `opsis video worker`) on the
    same data directory; with --wait it runs here, with a progress bar, unless a worker has it.
    """


def _video_command(name: str, operation: str) -> None:
    @video.command(name, help=f"{operation}: start the job on VIDEO (a file or s3://BUCKET/KEY).")
    @click.argument("video_path", metavar="VIDEO")
    @click.option("--collection-id", help="The collection to search (search-faces).")
    @click.option("--min-confidence", type=float, help="Lowest confidence of a label (detect-labels, moderation).")
    @click.option("--attributes", type=click.Choice(["DEFAULT", "ALL"]), help="Face attributes (detect-faces).")
    @click.option(
        "--segment-types", default="SHOT,TECHNICAL_CUE", show_default=True, help="Comma-separated (detect-segments)."
    )
    @click.option("--wait", is_flag=True, help="Run or watch the job to its end with a progress bar, then print it.")
    @data_dir_option
    @json_option
    def start(
        *,
        video_path: str,
        collection_id: str | None,
        min_confidence: float | None,
        attributes: str | None,
        segment_types: str,
        wait: bool,
        data_dir: Path | None,
        as_json: bool,
    ) -> None:
        params = _optional(MinConfidence=min_confidence, FaceAttributes=attributes)
        if operation == "StartFaceSearch":
            if collection_id is None:
                raise click.UsageError("search-faces needs --collection-id")
            params["CollectionId"] = collection_id
        if operation == "StartSegmentDetection":
            params["SegmentTypes"] = segment_types.split(",")
        with _session(data_dir) as opsis:
            job_id = opsis.start_video_job(operation, video_path, **params)
            if not wait:
                click.echo(job_id)
                return
            _wait_and_show(opsis, job_id, as_json)


for _name, _operation in VIDEO_COMMANDS.items():
    _video_command(_name, _operation)


@video.command("get")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Run or watch the job to its end with a progress bar first.")
@data_dir_option
@json_option
def video_get(job_id: str, wait: bool, data_dir: Path | None, as_json: bool) -> None:
    """Show a job's status and results (all pages)."""
    with _session(data_dir) as opsis:
        if wait:
            _wait_and_show(opsis, job_id, as_json)
        else:
            _output(opsis.video_job_results(job_id), as_json, _video_table)


@video.command("worker")
@data_dir_option
def video_worker(data_dir: Path | None) -> None:
    """Run queued video jobs in the foreground until interrupted (what `opsis serve` starts)."""
    import threading

    from opsis.jobs.worker import work

    with _session(data_dir) as opsis:
        try:
            work(opsis.ctx, threading.Event())
        except KeyboardInterrupt:
            click.echo("Stopped; a job in progress will be taken again.", err=True)


def _wait_and_show(opsis: Opsis, job_id: str, as_json: bool) -> None:
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"job {job_id[:12]}", total=100)
        opsis.wait_for_video_job(job_id, lambda fraction: bar.update(task, completed=fraction * 100))
    _output(opsis.video_job_results(job_id), as_json, _video_table)


def _video_table(r: Response) -> RenderableType:
    """The job's status line, then one row per result: when, and what was found."""
    from opsis.ops.video import KIND_OF_GET

    results = next(r[kind.results] for kind in KIND_OF_GET.values() if kind.results in r)
    status = f"Job {r['JobId']}: {r['JobStatus']}" + (f" ({r['StatusMessage']})" if r.get("StatusMessage") else "")
    table = Table("Time (s)", "Found")
    for item in results:
        table.add_row(
            f"{item.get('Timestamp', item.get('StartTimestampMillis', 0)) / 1000:.2f}", escape(_video_item(item))
        )
    return Group(Text(status), table)


def _confident(what: Response) -> str:
    return f"{what.get('Name', 'face')} {what['Confidence']:.1f}%"


VIDEO_ITEMS: dict[str, Callable[[Response], str]] = {
    "Face": _confident,
    "Label": _confident,
    "ModerationLabel": _confident,
    "Celebrity": _confident,
    "TextDetection": lambda text: f"{text['Type']} {text['DetectedText']!r}",
    "Person": lambda person: f"person {person['Index']}",
}


def _video_item(item: Response) -> str:
    """One result in a few words: a segment's type and timecodes, else what its main member found."""
    if "Type" in item:
        return f"{item['Type']} {item['StartTimecodeSMPTE']} - {item['EndTimecodeSMPTE']}"
    member = next(key for key in VIDEO_ITEMS if key in item)
    matches = ", ".join(match["Face"]["FaceId"] for match in item.get("FaceMatches", []))
    return VIDEO_ITEMS[member](item[member]) + (f" matches {matches}" if matches else "")


# --- audit trail ---------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail of biometric operations (<data-dir>/audit.db): who searched, indexed,
    compared or deleted what, when, with which thresholds. Append-only and hash-chained."""


def _audit_filters(command: Callable[..., None]) -> Callable[..., None]:
    for option in (
        click.option("--since", type=click.DateTime(), help="Entries at or after this time (UTC)."),
        click.option("--principal", help="Only this access key id (local: the CLI and Python API)."),
        click.option("--operation", help="Only this operation, e.g. SearchFacesByImage."),
        click.option("--collection-id", help="Only this collection."),
    ):
        command = option(command)
    return command


def _audit_entries(opsis: Opsis, filters: dict[str, Any], limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Matching entries, oldest first, as plain dicts (fetched a page at a time)."""
    from opsis.store.base import AuditQuery

    since = filters.pop("since")
    query = AuditQuery(since=since.replace(tzinfo=UTC).timestamp() if since else None, **filters)
    count = 0
    while entries := opsis.ctx.audit.entries(query):
        for entry in entries:
            if limit is not None and count >= limit:
                return
            count += 1
            yield {
                "Seq": entry.seq,
                "Time": datetime.fromtimestamp(entry.time, UTC).isoformat(timespec="milliseconds"),
                "Principal": entry.record.principal,
                "RequestId": entry.record.request_id,
                "Operation": entry.record.operation,
                "CollectionId": entry.record.collection_id,
                "Outcome": entry.record.outcome,
                "Details": entry.record.details,
                "Hash": entry.hash,
            }
        query = replace(query, after_seq=entries[-1].seq)


@audit.command("list")
@_audit_filters
@click.option("--limit", type=int, default=1000, show_default=True, help="At most this many entries.")
@data_dir_option
@json_option
def audit_list(limit: int, data_dir: Path | None, as_json: bool, **filters: Any) -> None:
    """Show audit entries, oldest first."""
    with _session(data_dir) as opsis:
        rows = list(_audit_entries(opsis, filters, limit))

    def render(_: Any) -> RenderableType:
        table = Table("Seq", "Time (UTC)", "Principal", "Operation", "Collection", "Outcome", "Details")
        for row in rows:
            details = json.dumps(row["Details"], separators=(",", ":"))
            table.add_row(
                str(row["Seq"]),
                row["Time"],
                row["Principal"],
                row["Operation"],
                row["CollectionId"] or "",
                row["Outcome"],
                escape(details if len(details) <= 80 else details[:77] + "..."),
            )
        return table

    _output(rows, as_json, render)


@audit.command("export")
@_audit_filters
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default: standard output).")
@data_dir_option
def audit_export(output: Any, data_dir: Path | None, **filters: Any) -> None:
    """Write the matching entries as JSON lines, with their hashes."""
    with _session(data_dir) as opsis:
        for row in _audit_entries(opsis, filters):
            output.write(json.dumps(row) + "\n")


@audit.command("verify")
@data_dir_option
def audit_verify(data_dir: Path | None) -> None:
    """Check the hash chain; prints the head hash to keep elsewhere. Exit status 1 if it is broken."""
    with _session(data_dir) as opsis:
        result = opsis.ctx.audit.verify()
    if not result.intact:
        click.echo(
            f"BROKEN: entry {result.broken_at} does not chain to the {result.entries} entries before it", err=True
        )
        sys.exit(1)
    click.echo(f"Intact: {result.entries} entries; head hash {result.head_hash}")


# --- any operation -------------------------------------------------------------------------------


@main.command("call")
@click.argument("operation")
@click.option(
    "--params", "params_text", default="{}", show_default=True, help="Request parameters: JSON, or @FILE of JSON."
)
@click.option("--image", type=PHOTO, help="A JPEG or PNG file whose bytes become Image.Bytes.")
@data_dir_option
def call(operation: str, params_text: str, image: Path | None, data_dir: Path | None) -> None:
    """Run any implemented OPERATION (SearchUsers or search-users) and print its JSON response.

    Blob parameters take base64, as on the wire, or fileb://PATH for a file's bytes, as in the AWS CLI:

    \b
        opsis call compare-faces --params \\
          '{"SourceImage": {"Bytes": "fileb://a.jpg"}, "TargetImage": {"Bytes": "fileb://b.jpg"}}'
    """
    from opsis.api.codec import decode_input
    from opsis.service_model import operation_model

    params = _read_params(params_text)
    if image is not None:
        image_param = params.setdefault("Image", {})
        if not isinstance(image_param, dict):
            raise click.BadParameter("Image must be a JSON object to take --image", param_hint="--params")
        image_param["Bytes"] = image.read_bytes()
    with _session(data_dir) as opsis:
        name = _operation_name(operation)
        response = opsis.call(name, decode_input(operation_model(name).input_shape, params))
    click.echo(_to_json(response))


def _read_params(text: str) -> dict[str, Any]:
    """--params: a JSON object, inline or from @FILE, with fileb://PATH strings read as bytes."""
    try:
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        params = json.loads(text)
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--params") from error
    if not isinstance(params, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--params")
    loaded: dict[str, Any] = _file_bytes(params)
    return loaded


def _file_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _file_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_file_bytes(item) for item in value]
    if isinstance(value, str) and value.startswith(FILE_BYTES):
        try:
            return Path(value.removeprefix(FILE_BYTES)).expanduser().read_bytes()
        except OSError as error:
            raise click.BadParameter(str(error), param_hint="--params") from error
    return value


def _operation_name(name: str) -> str:
    """The model's name of an operation given as "SearchFaces" or as the AWS CLI's "search-faces"."""
    from botocore import xform_name

    from opsis.service_model import service_model

    names: list[str] = service_model().operation_names
    by_cli_name = {xform_name(operation, "-"): operation for operation in names}
    if name in names:
        return name
    if name in by_cli_name:
        return by_cli_name[name]
    raise UnknownOperationException(f"Rekognition has no operation {name!r}")


# --- rendering -----------------------------------------------------------------------------------


def _faces_table(photo: Path, response: Response) -> Table:
    table = Table(title=f"{len(response['FaceDetails'])} face(s) in {escape(photo.name)}")
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
    table.add_column("Attributes")
    for number, face in enumerate(response["FaceDetails"], start=1):
        box, pose, quality = face["BoundingBox"], face.get("Pose", {}), face.get("Quality", {})
        table.add_row(
            str(number),
            f"{face['Confidence']:.1f}",
            *_box(box),
            *(f"{pose[k]:.0f}" if k in pose else "" for k in ("Roll", "Yaw", "Pitch")),
            *(f"{quality[k]:.0f}" if k in quality else "" for k in ("Brightness", "Sharpness")),
            _attribute_summary(face),
        )
    return table


def _attribute_summary(face: dict[str, Any]) -> str:
    """The facial attributes a face was described with, e.g. "Female 97%, 23-31, HAPPY 88%, Smile"."""
    parts = []
    if "Gender" in face:
        parts.append(f"{face['Gender']['Value']} {face['Gender']['Confidence']:.0f}%")
    if "AgeRange" in face:
        parts.append(f"{face['AgeRange']['Low']}-{face['AgeRange']['High']}")
    if face.get("Emotions"):
        top = face["Emotions"][0]
        parts.append(f"{top['Type']} {top['Confidence']:.0f}%")
    for key in ("Smile", "EyesOpen", "MouthOpen", "Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"):
        if key in face:
            parts.append(key if face[key]["Value"] else f"no {key}")
    if "EyeDirection" in face:
        parts.append(f"gaze {face['EyeDirection']['Yaw']:.0f}/{face['EyeDirection']['Pitch']:.0f}")
    return ", ".join(parts)


def _box(box: dict[str, float]) -> list[str]:
    return [f"{box[k]:.3f}" for k in ("Left", "Top", "Width", "Height")]


def _comparison_table(source: Path, target: Path, response: Response) -> Table:
    matches, unmatched = response["FaceMatches"], response["UnmatchedFaces"]
    table = Table(
        title=f"{len(matches)} of {len(matches) + len(unmatched)} face(s) in {escape(target.name)} "
        f"match the largest face in {escape(source.name)}"
    )
    for column in ("Match", "Similarity", "Confidence", "Left", "Top", "Width", "Height"):
        table.add_column(column, justify="right")
    for match in matches:
        face = match["Face"]
        table.add_row("yes", f"{match['Similarity']:.1f}", f"{face['Confidence']:.1f}", *_box(face["BoundingBox"]))
    for face in unmatched:
        table.add_row("no", "", f"{face['Confidence']:.1f}", *_box(face["BoundingBox"]))
    return table


def _text_table(photo: Path, response: Response) -> Table:
    """Each LINE followed by its WORDs, indented."""
    detections = response["TextDetections"]
    lines = [d for d in detections if d["Type"] == "LINE"]
    table = Table(
        title=f"{len(lines)} line(s), {len(detections) - len(lines)} word(s) in {escape(photo.name)} "
        f"(model {response['TextModelVersion']})"
    )
    table.add_column("Text")
    for column in ("Confidence", "Left", "Top", "Width", "Height"):
        table.add_column(column, justify="right")
    for line in lines:
        table.add_row(escape(line["DetectedText"]), *_text_cells(line), style="bold")
        for word in (d for d in detections if d.get("ParentId") == line["Id"] and d["Type"] == "WORD"):
            table.add_row("  " + escape(word["DetectedText"]), *_text_cells(word))
    return table


def _text_cells(detection: dict[str, Any]) -> list[str]:
    return [f"{detection['Confidence']:.1f}", *_box(detection["Geometry"]["BoundingBox"])]


def _labels_view(photo: Path, response: Response) -> RenderableType:
    """The labels, and the image properties when they were asked for."""
    labels = _labels_table(photo, response)
    properties = response.get("ImageProperties")
    return labels if properties is None else Group(labels, _image_properties_table(properties))


def _labels_table(photo: Path, response: Response) -> Table:
    table = Table(title=f"{len(response['Labels'])} label(s) in {escape(photo.name)} ({response['LabelModelVersion']})")
    table.add_column("Label")
    table.add_column("Confidence", justify="right")
    table.add_column("Instances (confidence: left, top, width, height)")
    table.add_column("Parents")
    table.add_column("Categories")
    for label in response["Labels"]:
        instances = [f"{i['Confidence']:.0f}: {', '.join(_box(i['BoundingBox']))}" for i in label["Instances"]]
        table.add_row(
            escape(label["Name"]),
            f"{label['Confidence']:.1f}",
            "\n".join(instances),
            escape(", ".join(parent["Name"] for parent in label["Parents"])),
            escape(", ".join(category["Name"] for category in label["Categories"])),
        )
    return table


def _image_properties_table(properties: dict[str, Any]) -> Table:
    table = Table(title="Image properties")
    for column in ("Region", "Brightness", "Sharpness", "Contrast", "Dominant colours (share %)"):
        table.add_column(column, justify="left" if column in ("Region", "Dominant colours (share %)") else "right")
    regions: dict[str, Any] = {"Image": properties}
    regions.update((k, properties[k]) for k in ("Foreground", "Background") if k in properties)
    for name, region in regions.items():
        quality = region["Quality"]
        scores = [f"{quality[k]:.0f}" if k in quality else "" for k in ("Brightness", "Sharpness", "Contrast")]
        colours = ", ".join(f"{c['CSSColor']} {c['PixelPercent']:.0f}" for c in region["DominantColors"])
        table.add_row(name, *scores, colours)
    return table


def _properties_table(title: str, response: Response) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("Property", style="bold")
    table.add_column("Value")
    for key, value in response.items():
        table.add_row(key, value.isoformat() if isinstance(value, datetime) else str(value))
    return table


def _collections_table(response: Response) -> Table:
    table = Table(title=f"{len(response['CollectionIds'])} collection(s)")
    table.add_column("CollectionId")
    table.add_column("FaceModelVersion")
    for row in zip(response["CollectionIds"], response["FaceModelVersions"], strict=True):
        table.add_row(*row)
    return table


def _indexed_table(collection_id: str, responses: list[tuple[Path, Response]]) -> Table:
    indexed = sum(len(response["FaceRecords"]) for _, response in responses)
    table = Table(title=f"{indexed} face(s) indexed into {collection_id} from {len(responses)} photo(s)")
    for column in ("Photo", "FaceId", "ExternalImageId", "Confidence", "Left", "Top", "Width", "Height", "Not indexed"):
        table.add_column(
            column, justify="right" if column in ("Confidence", "Left", "Top", "Width", "Height") else "left"
        )
    for photo, response in responses:
        for record in response["FaceRecords"]:
            face = record["Face"]
            table.add_row(
                escape(photo.name),
                face["FaceId"],
                face.get("ExternalImageId", ""),
                f"{face['Confidence']:.1f}",
                *_box(face["BoundingBox"]),
                "",
            )
        for unindexed in response["UnindexedFaces"]:
            detail = unindexed["FaceDetail"]
            table.add_row(
                escape(photo.name),
                "",
                "",
                f"{detail['Confidence']:.1f}",
                *_box(detail["BoundingBox"]),
                ", ".join(unindexed["Reasons"]),
            )
    return table


def _stored_faces_table(title: str, faces: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("FaceId", "ExternalImageId", "UserId", "Confidence"):
        table.add_column(column, justify="right" if column == "Confidence" else "left")
    for face in faces:
        table.add_row(
            face["FaceId"], face.get("ExternalImageId", ""), face.get("UserId", ""), f"{face['Confidence']:.1f}"
        )
    return table


def _face_matches_table(title: str, response: Response) -> Table:
    table = Table(title=title)
    for column in ("#", "Similarity", "FaceId", "ExternalImageId", "UserId"):
        table.add_column(column, justify="right" if column in ("#", "Similarity") else "left")
    for number, match in enumerate(response["FaceMatches"], start=1):
        face = match["Face"]
        table.add_row(
            str(number),
            f"{match['Similarity']:.1f}",
            face["FaceId"],
            face.get("ExternalImageId", ""),
            face.get("UserId", ""),
        )
    return table


def _outcomes_table(title: str, done: list[tuple[str, str]], failures: list[dict[str, Any]]) -> Table:
    """Per-face outcomes of DeleteFaces or AssociateFaces: what was done, or why not."""
    table = Table(title=title)
    table.add_column("FaceId")
    table.add_column("Outcome")
    for face_id, outcome in done:
        table.add_row(face_id, outcome)
    for failure in failures:
        owner = f" (user {failure['UserId']})" if "UserId" in failure else ""
        table.add_row(failure["FaceId"], ", ".join(failure["Reasons"]) + owner)
    return table


def _user_matches_table(title: str, response: Response) -> Table:
    table = Table(title=title)
    for column in ("#", "Similarity", "UserId", "UserStatus"):
        table.add_column(column, justify="right" if column in ("#", "Similarity") else "left")
    for number, match in enumerate(response["UserMatches"], start=1):
        user = match["User"]
        table.add_row(str(number), f"{match['Similarity']:.1f}", user["UserId"], user["UserStatus"])
    return table


def _users_table(collection_id: str, response: Response) -> Table:
    table = Table(title=f"{len(response['Users'])} user(s) in {collection_id}")
    table.add_column("UserId")
    table.add_column("UserStatus")
    for user in response["Users"]:
        table.add_row(user["UserId"], user["UserStatus"])
    return table


def _imported_celebrities_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} celebrit{'y' if len(rows) == 1 else 'ies'} imported")
    for column in ("Id", "Name", "Faces", "Skipped photos"):
        table.add_column(column, justify="right" if column == "Faces" else "left")
    for row in rows:
        skipped = "\n".join(f"{escape(Path(s['Photo']).name)}: {escape(s['Reason'])}" for s in row["Skipped"])
        table.add_row(row["Id"], escape(row["Name"]), str(row["Faces"]), skipped)
    return table


def _celebrities_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} celebrit{'y' if len(rows) == 1 else 'ies'} in the gallery")
    for column in ("Id", "Name", "KnownGender", "Faces", "Urls"):
        table.add_column(column, justify="right" if column == "Faces" else "left")
    for row in rows:
        urls = " ".join(row["Urls"])
        table.add_row(row["Id"], escape(row["Name"]), row["KnownGender"] or "", str(row["Faces"]), escape(urls))
    return table
