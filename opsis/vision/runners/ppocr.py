"""PP-OCRv6 small text detection and recognition (Baidu PaddleOCR), the ONNX files shipped in the
`rapidocr` wheel, run through rapidocr's pre- and post-processing.

rapidocr is given the wheel's own model files by path, so its model router and downloader (which
fetch anything else from ModelScope) are never reached. We call its pipeline steps
(`preprocess_img`, `run_ocr_steps`) rather than `RapidOCR.__call__`, because the latter gives each
word the confidence of one *character* (it zips words with per-character scores) and pairs the
detector's scores with boxes in a different order; from the steps we get each line's quad, its
text, the per-character probabilities and the CTC column of every character, and build words from
those ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as package_version
from importlib.resources import files
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from opsis.vision.calibration import calibration_document, sigmoid
from opsis.vision.types import Detections, TextReading

PACKAGE = "rapidocr"
DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
RECOGNIZER_FILE = "PP-OCRv6_rec_small.onnx"
CLASSIFIER_FILE = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
# rapidocr crops a line whose height is at least this multiple of its width and turns it 90 degrees
# counter-clockwise before recognition (rapidocr.utils.process_img.get_rotate_crop_image).
VERTICAL_CROP_RATIO = 1.5
# The orientation classifier turns a crop upside down only above this score (its `cls_thresh`).
FLIP_SCORE = 0.9
# Character probabilities are clipped here before logits, so a certain word has a finite score.
PROBABILITY_FLOOR = 1e-6


@dataclass(frozen=True)
class TextCalibration:
    """Platt scaling of a word's raw score, the logit of the product of its characters' CTC
    probabilities (the probability of the decoded path). The defaults leave the raw product."""

    slope: float = 1.0
    bias: float = 0.0

    def apply(self, path_probabilities: NDArray[np.float64]) -> NDArray[np.float32]:
        """P(the word is read exactly right), monotone in the path probability."""
        return sigmoid(self.slope * path_logit(path_probabilities) + self.bias)


def path_logit(path_probabilities: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(np.asarray(path_probabilities, np.float64), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    result: NDArray[np.float64] = np.log(p) - np.log1p(-p)
    return result


@dataclass(frozen=True)
class DetectorSize:
    """How big the detector sees the image: rapidocr's `Det.limit_type`/`limit_side_len`, after its
    global bound on the longest side (`Global.max_side_len`)."""

    limit_type: str = "min"
    limit_side_len: int = 736
    max_side_len: int = 2000


class PpOcrReader:
    """`TextReader` over PP-OCRv6 small (detector, recogniser) and PP-OCR's 0/180-degree line
    orientation classifier; word confidences are calibrated probabilities that the word is right."""

    name = "ppocrv6-small"

    def __init__(
        self, threads: int = 1, calibration: TextCalibration | None = None, size: DetectorSize | None = None
    ) -> None:
        from rapidocr import RapidOCR

        self.version = f"{self.name}-{package_version(PACKAGE)}"
        self.calibration = calibration or load_calibration(self.version)
        self._engine = RapidOCR(params=_engine_params(threads, size or DetectorSize()))
        # rapidocr loads its three models on first use; a rendered word makes that happen now.
        self.read(_rendered_word())

    def read(self, pixels: NDArray[np.uint8]) -> TextReading:
        """Lines and words in `pixels` (RGB, upright)."""
        from rapidocr.utils.process_img import map_boxes_to_original

        bgr = np.ascontiguousarray(pixels[:, :, ::-1])  # rapidocr takes arrays as OpenCV's BGR
        image, record = self._engine.preprocess_img(bgr)
        detected, oriented, recognised, crops = self._engine.run_ocr_steps(image, record)
        if detected.boxes is None or recognised.txts is None or len(detected.boxes) == 0:
            return empty_reading()
        readings = [
            Recognised(text, float(score), info, "180" in label and label_score > FLIP_SCORE)
            for text, score, info, (label, label_score) in zip(
                recognised.txts, recognised.scores, recognised.word_results, oriented.cls_res, strict=True
            )
        ]
        if any(reading.is_flipped for reading in readings):
            readings = self._better_way_up(crops, readings)
        cut = np.array(detected.boxes, np.float32)  # the quads the crops were cut from
        height, width = pixels.shape[:2]
        quads = map_boxes_to_original(cut.copy(), record, height, width)
        lines = [_line(quads[row], cut[row], reading) for row, reading in enumerate(readings)]
        return self._reading([line for line in lines if line is not None])

    def _better_way_up(self, crops: list[NDArray[np.uint8]], readings: list[Recognised]) -> list[Recognised]:
        """Each line read the other way up too, keeping the more probable reading.

        The orientation classifier (PP-OCR's 2020 mobile model, on a 192-pixel squeeze of the line)
        both misses and invents upside-down lines. Once it has turned any line of an image, the
        image may hold turned text, so every line is read both ways; an image where it turned
        none costs nothing extra.
        """
        from rapidocr.ch_ppocr_rec import TextRecInput

        others = [
            crop if reading.is_flipped else cv2.rotate(crop, cv2.ROTATE_180)
            for crop, reading in zip(crops, readings, strict=True)
        ]
        recognizer = self._engine.text_rec  # loaded: the first pass recognised these lines
        if recognizer is None or not readings:
            return readings
        again = recognizer(TextRecInput(img=others, return_word_box=True))
        if again.txts is None:
            return readings
        return [
            Recognised(text, float(score), info, not reading.is_flipped)
            if float(score) > reading.score and text.strip()
            else reading
            for reading, text, score, info in zip(readings, again.txts, again.scores, again.word_results, strict=True)
        ]

    def _reading(self, lines: list[RawLine]) -> TextReading:
        """Calibrated Detections of lines and words; a line's confidence is its words' mean."""
        if not lines:
            return empty_reading()
        confidence = self.calibration.apply(np.concatenate([line.path_probabilities for line in lines]))
        line_of_word = np.concatenate([np.full(len(line.words), row, np.int64) for row, line in enumerate(lines)])
        words = quad_detections(
            np.concatenate([line.word_quads for line in lines]),
            confidence,
            [word for line in lines for word in line.words],
        ).with_columns(line=line_of_word)
        line_confidence = np.array([confidence[line_of_word == row].mean() for row in range(len(lines))], np.float32)
        lines_found = quad_detections(
            np.stack([line.quad for line in lines]), line_confidence, [line.text for line in lines]
        )
        return TextReading(lines_found, words)


@dataclass(frozen=True)
class Recognised:
    """The recogniser's reading of one line crop: text, mean character probability, rapidocr's
    `WordInfo`, and whether the crop was read upside down."""

    text: str
    score: float
    info: Any
    is_flipped: bool


@dataclass(frozen=True)
class WordSpan:
    """A word of a recognised line: where it starts and ends along the line (0-1, in reading
    order) and the probability of its decoded characters, before calibration."""

    text: str
    start: float
    end: float
    path_probability: float


@dataclass(frozen=True)
class RawLine:
    """One recognised line: its reading-order quad and text, and its words with their quads."""

    quad: NDArray[np.float32]
    words: list[str]
    word_quads: NDArray[np.float32]
    path_probabilities: NDArray[np.float64]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _line(quad: NDArray[np.float32], cut: NDArray[np.float32], reading: Recognised) -> RawLine | None:
    """A line from its quad in image pixels, the same quad where rapidocr cut its crop (which
    tells whether the crop was turned upright) and its reading; None when it holds no word."""
    turned = _crop_side(cut, 0, 3, 1, 2) >= VERTICAL_CROP_RATIO * _crop_side(cut, 0, 1, 3, 2)
    quad = reading_quad(quad, is_turned=turned, is_flipped=reading.is_flipped)
    spans = word_spans(reading.text, reading.info)
    if not spans:
        return None
    return RawLine(
        quad=quad,
        words=[span.text for span in spans],
        word_quads=np.stack([sub_quad(quad, span.start, span.end) for span in spans]),
        path_probabilities=np.array([span.path_probability for span in spans], np.float64),
    )


def _crop_side(quad: NDArray[np.float32], a: int, b: int, c: int, d: int) -> int:
    """The longer of edges a-b and c-d, truncated as rapidocr sizes its crops."""
    return int(max(np.linalg.norm(quad[a] - quad[b]), np.linalg.norm(quad[c] - quad[d])))


def reading_quad(quad: NDArray[np.float32], *, is_turned: bool, is_flipped: bool) -> NDArray[np.float32]:
    """The quad's corners re-ordered to start at the text's own top-left.

    rapidocr's quad runs top-left, top-right, bottom-right, bottom-left of the image-axis crop.
    A crop turned 90 degrees counter-clockwise starts at the old top-right; one the classifier
    turned upside down starts at the opposite corner.
    """
    shift = (1 if is_turned else 0) + (2 if is_flipped else 0)
    result: NDArray[np.float32] = np.roll(np.asarray(quad, np.float32), -shift, axis=0)
    return result


def word_spans(text: str, info: Any) -> list[WordSpan]:
    """Split a line's text at whitespace (Rekognition's words: characters not separated by spaces)
    and place each word along the line from the CTC columns its characters were decoded at.

    `info` is rapidocr's `WordInfo`: `word_cols` (the column of every non-space character, in
    order), `confs` (the probability of every character of `text`) and `line_txt_len` (how many
    columns the crop itself spans; the rest is batch padding).
    """
    columns = np.array([column for word in info.word_cols for column in word], np.float64)
    probabilities = np.asarray(info.confs, np.float64)
    is_char = np.array([not char.isspace() for char in text], bool)
    tokens = _tokens(text)
    if not tokens:
        return []
    if len(columns) != int(is_char.sum()) or len(probabilities) != len(text) or info.line_txt_len <= 0:
        # Not the layout expected (should not happen): spread the words evenly, line confidence.
        return _even_spans(text, tokens, float(np.mean(probabilities)) if len(probabilities) else 0.0)
    centres = (columns + 0.5) / info.line_txt_len
    half = _half_pitch(tokens, is_char, centres, len(text))
    ordinal = np.cumsum(is_char) - 1  # the index in `centres` of each character of `text`
    spans = []
    for first, last in tokens:
        spans.append(
            WordSpan(
                text=text[first : last + 1],
                start=float(centres[ordinal[first]] - half),
                end=float(centres[ordinal[last]] + half),
                path_probability=float(np.prod(probabilities[first : last + 1])),
            )
        )
    return _fitted(spans)


def _tokens(text: str) -> list[tuple[int, int]]:
    """(first, last) character index of every whitespace-separated word."""
    tokens: list[tuple[int, int]] = []
    start: int | None = None
    for index, char in enumerate(text + " "):
        if char.isspace() and start is not None:
            tokens.append((start, index - 1))
            start = None
        elif not char.isspace() and start is None:
            start = index
    return tokens


def _half_pitch(
    tokens: list[tuple[int, int]], is_char: NDArray[np.bool_], centres: NDArray[np.float64], length: int
) -> float:
    """Half the distance between neighbouring characters of a word (median over the line), as a
    fraction of the line; for a line of one-letter words, half the line per character."""
    ordinal = np.cumsum(is_char) - 1
    steps = [np.diff(centres[ordinal[first] : ordinal[last] + 1]) for first, last in tokens if last > first]
    within = np.concatenate(steps) if steps else np.zeros(0)
    return float(np.median(within)) / 2 if len(within) else 0.5 / max(length, 1)


def _fitted(spans: list[WordSpan]) -> list[WordSpan]:
    """Spans inside the line and apart: the outer words reach the line's ends (the detector's quad
    bounds the text better than CTC positions do) and neighbours meet halfway where they overlap."""
    starts = [span.start for span in spans]
    ends = [span.end for span in spans]
    starts[0], ends[-1] = 0.0, 1.0
    for left in range(len(spans) - 1):
        if ends[left] > starts[left + 1]:
            ends[left] = starts[left + 1] = (ends[left] + starts[left + 1]) / 2
    return [
        WordSpan(span.text, min(max(start, 0.0), 1.0), min(max(end, 0.0), 1.0), span.path_probability)
        for span, start, end in zip(spans, starts, ends, strict=True)
    ]


def _even_spans(text: str, tokens: list[tuple[int, int]], probability: float) -> list[WordSpan]:
    length = max(len(text), 1)
    return [
        WordSpan(text[first : last + 1], first / length, (last + 1) / length, probability) for first, last in tokens
    ]


def sub_quad(quad: NDArray[np.float32], start: float, end: float) -> NDArray[np.float32]:
    """The part of a reading-order quad between fractions `start` and `end` of its length."""
    top_left, top_right, bottom_right, bottom_left = np.asarray(quad, np.float64)
    top = top_left + np.array([[start], [end]]) * (top_right - top_left)
    bottom = bottom_left + np.array([[end], [start]]) * (bottom_right - bottom_left)
    result: NDArray[np.float32] = np.concatenate([top, bottom]).astype(np.float32)
    return result


def quad_detections(quads: NDArray[np.float32], confidence: NDArray[np.float32], texts: list[str]) -> Detections:
    """Detections of (n, 4, 2) quads: their axis-aligned boxes, the quads as landmarks, and texts."""
    quads = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    xyxy = np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1)
    return Detections(xyxy, np.asarray(confidence, np.float32), quads, {"text": np.array(texts, dtype=object)})


def empty_reading() -> TextReading:
    none = quad_detections(np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32), [])
    return TextReading(none, none.with_columns(line=np.zeros(0, np.int64)))


def load_calibration(model_version: str) -> TextCalibration:
    """The word-confidence calibration shipped for this model version."""
    return TextCalibration(**calibration_document(model_version)["parameters"])


def _engine_params(threads: int, size: DetectorSize) -> dict[str, Any]:
    """rapidocr's settings: the wheel's own model files (so nothing is routed or downloaded), our
    thread count, per-character word info, and quiet logs (an image without text is no warning)."""
    models = files(PACKAGE) / "models"
    return {
        "Global.log_level": "error",
        "Global.return_word_box": True,
        "Global.max_side_len": size.max_side_len,
        "Det.model_path": str(models / DETECTOR_FILE),
        "Det.limit_type": size.limit_type,
        "Det.limit_side_len": size.limit_side_len,
        "Cls.model_path": str(models / CLASSIFIER_FILE),
        "Rec.model_path": str(models / RECOGNIZER_FILE),
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }


def _rendered_word() -> NDArray[np.uint8]:
    """Black "Opsis" on white, enough text for all three models to run once."""
    canvas = np.full((96, 320, 3), 255, np.uint8)
    cv2.putText(canvas, "Opsis", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 4, cv2.LINE_AA)
    return canvas
