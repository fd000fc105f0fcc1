"""RecognizeCelebrities and GetCelebrityInfo through boto3, against a gallery imported with the CLI.

The gallery is built in a temporary directory from shared photos of two people of the
face_recognition set (Obama and Biden, two photos each) and imported into the live server's data
directory by `opsis celebrities import`, in-process: the store is shared across processes. Other
photos of them must be recognised, and the set's other people must not.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result
from PIL import Image

from opsis.cli import main
from tests.conftest import LiveServer, read

PEOPLE = "faces/identities/face_recognition"
IMAGES = f"{PEOPLE}/images"
# Who goes into the gallery, with which photos; every other photo of the set is a probe.
GALLERY = {
    "obama": ("Barack Obama", "obama44", "Male", ("obama/obama.jpg", "obama/obama2.jpg")),
    "biden": ("Joe Biden", "", "Male", ("biden/biden.jpg", "biden/biden2.jpg")),
}
URLS = "https://example.org/a https://example.org/b"
TWO_PEOPLE = f"{IMAGES}/multi/two_people.jpg"


def opsis(server: LiveServer, *args: str) -> Result:
    """`opsis ARGS --data-dir <the live server's data dir>`, in-process."""
    return CliRunner().invoke(main, [*args, "--data-dir", str(server.data_dir)], terminal_width=200)


def write_gallery(directory: Path, data_root: Path) -> None:
    """A gallery directory: the photos copied into per-person folders and a celebrities.csv."""
    rows = []
    for key, (name, celebrity_id, gender, photos) in GALLERY.items():
        (directory / key).mkdir(parents=True)
        for photo in photos:
            shutil.copy(data_root / IMAGES / photo, directory / key)
        rows.append({"name": name, "id": celebrity_id, "urls": URLS, "known_gender": gender, "photos": key})
    with (directory / "celebrities.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["name", "id", "urls", "known_gender", "photos"])
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def gallery(server: LiveServer, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The gallery imported into the live server; yields the import's JSON, by name."""
    directory = tmp_path_factory.mktemp("gallery")
    write_gallery(directory, data_root)
    result = opsis(server, "celebrities", "import", str(directory), "--json")
    assert result.exit_code == 0, result.output
    yield {row["Name"]: row for row in json.loads(result.output)}
    assert opsis(server, "celebrities", "remove", "--all").exit_code == 0


def recognize(rekognition: Any, image: bytes) -> dict[str, Any]:
    response: dict[str, Any] = rekognition.recognize_celebrities(Image={"Bytes": image})
    return response


def names(response: dict[str, Any]) -> list[str]:
    return [celebrity["Name"] for celebrity in response["CelebrityFaces"]]


def test_without_a_gallery_every_face_is_unrecognised(rekognition: Any, server: LiveServer, data_root: Path) -> None:
    assert opsis(server, "celebrities", "remove", "--all").exit_code == 0
    response = recognize(rekognition, read(data_root, TWO_PEOPLE))
    assert response["CelebrityFaces"] == []
    assert len(response["UnrecognizedFaces"]) == 2


def test_import_reports_the_faces_enrolled(gallery: dict[str, Any]) -> None:
    assert {name: row["Faces"] for name, row in gallery.items()} == {"Barack Obama": 2, "Joe Biden": 2}
    assert gallery["Barack Obama"]["Id"] == "obama44"
    assert gallery["Joe Biden"]["Id"].isalnum()  # derived from the name


def test_other_photos_of_enrolled_people_are_recognised(
    rekognition: Any, data_root: Path, gallery: dict[str, Any]
) -> None:
    response = recognize(rekognition, read(data_root, f"{IMAGES}/obama/obama3.jpg"))
    assert names(response) == ["Barack Obama"]
    celebrity = response["CelebrityFaces"][0]
    assert celebrity["Id"] == "obama44"
    assert celebrity["MatchConfidence"] >= 99
    assert celebrity["Urls"] == URLS.split()
    assert celebrity["KnownGender"] == {"Type": "Male"}
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Emotions", "Smile"} <= set(celebrity["Face"])
    assert response["UnrecognizedFaces"] == []


def test_two_people_are_named_in_their_places(rekognition: Any, data_root: Path, gallery: dict[str, Any]) -> None:
    response = recognize(rekognition, read(data_root, TWO_PEOPLE))
    by_left = sorted(response["CelebrityFaces"], key=lambda c: c["Face"]["BoundingBox"]["Left"])
    # multi_person.csv: obama on the left, biden on the right.
    assert [c["Id"] for c in by_left] == ["obama44", gallery["Joe Biden"]["Id"]]


@pytest.mark.parametrize(
    "photo",
    [
        "kit_harington/john1.jpeg",
        "rose_leslie/img1.jpg",
        "alex_lacamoire/alex_lacamoire1.jpg",
        "multi/kit_with_rose.jpg",
    ],
)
def test_strangers_are_unrecognised(rekognition: Any, data_root: Path, gallery: dict[str, Any], photo: str) -> None:
    response = recognize(rekognition, read(data_root, f"{IMAGES}/{photo}"))
    assert response["CelebrityFaces"] == []
    assert response["UnrecognizedFaces"]
    assert {"BoundingBox", "Confidence", "Emotions", "Smile"} <= set(response["UnrecognizedFaces"][0])


def side_by_side(photos: list[bytes]) -> bytes:
    """One JPEG of the photos next to each other, scaled to the same height."""
    images = [Image.open(io.BytesIO(photo)).convert("RGB") for photo in photos]
    height = min(image.height for image in images)
    images = [image.resize((round(image.width * height / image.height), height)) for image in images]
    joined = Image.new("RGB", (sum(image.width for image in images), height))
    for image, left in zip(images, [0, *np.cumsum([image.width for image in images])], strict=False):
        joined.paste(image, (int(left), 0))
    buffer = io.BytesIO()
    joined.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_a_celebrity_is_named_once_per_image(rekognition: Any, data_root: Path, gallery: dict[str, Any]) -> None:
    photos = [read(data_root, f"{IMAGES}/obama/{name}") for name in ("obama3.jpg", "obama1.jpg")]
    response = recognize(rekognition, side_by_side(photos))
    assert names(response) == ["Barack Obama"]
    assert len(response["UnrecognizedFaces"]) == 1


def test_no_face_is_no_error(rekognition: Any, data_root: Path, gallery: dict[str, Any]) -> None:
    response = recognize(rekognition, read(data_root, "misc/chelsea.png"))
    assert response["CelebrityFaces"] == []
    assert response["UnrecognizedFaces"] == []


def test_get_celebrity_info(rekognition: Any, gallery: dict[str, Any]) -> None:
    response = rekognition.get_celebrity_info(Id=gallery["Joe Biden"]["Id"])
    assert response["Name"] == "Joe Biden"
    assert response["Urls"] == URLS.split()
    assert response["KnownGender"] == {"Type": "Male"}


@pytest.mark.parametrize(
    ("celebrity_id", "code"),
    [("nosuchperson1", "ResourceNotFoundException"), ("not-alphanumeric!", "InvalidParameterException")],
)
def test_get_celebrity_info_of_a_bad_id(
    unvalidated_rekognition: Any, gallery: dict[str, Any], celebrity_id: str, code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        unvalidated_rekognition.get_celebrity_info(Id=celebrity_id)
    assert raised.value.response["Error"]["Code"] == code


def test_the_gallery_is_no_collection_of_the_api(rekognition: Any, gallery: dict[str, Any]) -> None:
    assert all(":" not in collection for collection in rekognition.list_collections()["CollectionIds"])


def test_list_shows_each_celebrity_with_its_faces(server: LiveServer, gallery: dict[str, Any]) -> None:
    result = opsis(server, "celebrities", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = {row["Name"]: row for row in json.loads(result.output)}
    assert {name: row["Faces"] for name, row in listed.items()} == {"Barack Obama": 2, "Joe Biden": 2}
    assert listed["Barack Obama"]["KnownGender"] == "Male"


def test_import_again_replaces_and_remove_erases(
    rekognition: Any, server: LiveServer, data_root: Path, tmp_path: Path, gallery: dict[str, Any]
) -> None:
    write_gallery(tmp_path, data_root)
    again = opsis(server, "celebrities", "import", str(tmp_path), "--json")
    assert again.exit_code == 0, again.output
    listed = json.loads(opsis(server, "celebrities", "list", "--json").output)
    assert [row["Faces"] for row in listed] == [2, 2]  # replaced, not doubled
    assert opsis(server, "celebrities", "remove", "obama44").exit_code == 0
    with pytest.raises(ClientError) as raised:
        rekognition.get_celebrity_info(Id="obama44")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert names(recognize(rekognition, read(data_root, TWO_PEOPLE))) == ["Joe Biden"]
    assert opsis(server, "celebrities", "import", str(tmp_path)).exit_code == 0  # as the other tests expect


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("name,photos\n,obama\n", "name is required"),
        ("name,known_gender,photos\nSomeone,Robot,obama\n", "known_gender must be one of"),
        ("name,id,photos\nSomeone,not-an-id,obama\n", "must be 1-64 letters and digits"),
        ("name,photos\nSomeone,missing-folder\n", "does not exist"),
        ("name,id,photos\nA,x1,obama\nB,x1,obama\n", "several people the Id x1"),
    ],
)
def test_bad_manifests_are_refused(
    server: LiveServer, data_root: Path, tmp_path: Path, manifest: str, message: str
) -> None:
    (tmp_path / "obama").mkdir()
    shutil.copy(data_root / IMAGES / "obama/obama.jpg", tmp_path / "obama")
    (tmp_path / "celebrities.csv").write_text(manifest)
    result = opsis(server, "celebrities", "import", str(tmp_path))
    assert result.exit_code == 1
    assert message in result.output


def test_remove_needs_ids_or_all(server: LiveServer) -> None:
    assert opsis(server, "celebrities", "remove").exit_code == 2


def test_a_json_manifest(data_root: Path, tmp_path: Path) -> None:
    (tmp_path / "gallery").mkdir()
    shutil.copy(data_root / IMAGES / "biden/biden.jpg", tmp_path / "gallery")
    # Lists may be JSON lists or, as in the CSV, strings.
    people = [{"name": "Joe Biden", "id": "jb46", "urls": ["https://example.org/jb"], "photos": "biden.jpg"}]
    (tmp_path / "gallery" / "celebrities.json").write_text(json.dumps(people))
    data_dir = tmp_path / "data"
    imported = CliRunner().invoke(
        main, ["celebrities", "import", str(tmp_path / "gallery"), "--data-dir", str(data_dir)]
    )
    assert imported.exit_code == 0, imported.output
    listed = CliRunner().invoke(main, ["celebrities", "list", "--json", "--data-dir", str(data_dir)])
    assert json.loads(listed.output) == [
        {"Id": "jb46", "Name": "Joe Biden", "Urls": ["https://example.org/jb"], "KnownGender": None, "Faces": 1}
    ]


def test_the_cli_names_the_celebrities_in_a_photo(server: LiveServer, data_root: Path, gallery: dict[str, Any]) -> None:
    result = opsis(server, "recognize-celebrities", str(data_root / IMAGES / "obama/obama3.jpg"))
    assert result.exit_code == 0, result.output
    assert "Barack Obama" in result.output
    assert "obama44" in result.output
