"""The text reader: rapidocr's ONNX detector and recogniser (inside the `rapidocr-onnxruntime` wheel).

The detector finds text boxes on a camera crop; each box is recognised; boxes on one line are
joined left to right. Blocking: callers on an event loop run `read_lines` in a thread. One
onnxruntime thread per session, so that the station's other work keeps its cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.errors import InferenceError

DET_SIDE = 384
"""The detector's input is scaled so that its longer side is at most this: its cost grows with the pixels,
and at 384 px the text of a plate or door crop is still 20+ px tall (bench/bench_plates.py; 320 px lost
plates)."""
REC_HEIGHT = 48
"""The recogniser's input height. Each line is recognised alone at its own width: rapidocr pads a batch to
its widest line and to at least 320 px (6.7 : 1), and a plate line is about 4 : 1, so that padding was
half the recogniser's work."""


@dataclass(frozen=True)
class TextLine:
    """One line of text on a crop: its text, the lowest confidence of its boxes, and its bounds (x0, y0, x1, y1)."""

    text: str
    confidence: float
    box: tuple[int, int, int, int]


class TextReader:
    """rapidocr's detector and recogniser, loaded once from the models shipped in its wheel.

    Detection runs on a copy scaled to `det_side` (its cost grows with the pixels); recognition
    runs on the boxes cut from the full-resolution crop (its accuracy needs the pixels)."""

    def __init__(self, threads: int = 1, det_side: int = DET_SIDE) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.det_side = det_side
        self._ocr: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, text_score=0.0,
                                  det_limit_type="max", use_cls=False, rec_img_shape=[3, REC_HEIGHT, REC_HEIGHT],
                                  rec_batch_num=1)

    def read_lines(self, crop: np.ndarray) -> list[TextLine]:
        """The lines of text on a BGR (or grey) crop, top to bottom."""
        crop = _bgr(crop)
        try:
            boxes = self._detect(crop)
            texts = self._ocr.text_rec(self._ocr.get_crop_img_list(crop, boxes))[0] if boxes else []
        except Exception as exc:  # onnxruntime and rapidocr raise plain exceptions: translated here, once
            raise InferenceError(f"text reader failed on a {crop.shape} crop: {exc}") from exc
        return join_lines([_box(points, str(text), _confidence(text, score, crop))
                           for points, (text, score) in zip(boxes, texts)])

    def _detect(self, crop: np.ndarray) -> list[np.ndarray]:
        scale = min(1.0, self.det_side / max(crop.shape[:2]))
        small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else crop
        boxes, _ = self._ocr.text_det(small)
        if boxes is None or len(boxes) == 0:
            return []
        return [np.asarray(b, np.float32) / scale for b in self._ocr.sorted_boxes(boxes)]

    def recognise(self, crop: np.ndarray) -> TextLine:
        """The recogniser alone on a crop that is one line of text (no detection)."""
        try:
            (text, score), = self._ocr.text_rec([_bgr(crop)])[0]
        except Exception as exc:
            raise InferenceError(f"text recogniser failed on a {crop.shape} crop: {exc}") from exc
        return TextLine(str(text), _confidence(text, score, crop), (0, 0, crop.shape[1], crop.shape[0]))


def _confidence(text: object, score: float, crop: np.ndarray) -> float:
    """The recogniser's score of a text as a confidence, or InferenceError when it is no number from 0 to 1 (NaN from
    a broken model): such a read is never voted, so a frame giving one is a frame the reader failed on."""
    value = float(score)
    if not 0.0 <= value <= 1.0:
        raise InferenceError(f"text reader gave {text!r} the confidence {value} on a {crop.shape} crop, "
                             f"not a number from 0 to 1")
    return value


def _bgr(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 else crop)


def _box(points: Any, text: str, score: float) -> TextLine:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return TextLine(text, score, (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))))


def join_lines(boxes: list[TextLine]) -> list[TextLine]:
    """Join boxes whose vertical centres lie within each other's height into lines, left to right."""
    lines: list[list[TextLine]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre = (box.box[1] + box.box[3]) / 2
        home = next((line for line in lines if line[-1].box[1] <= centre <= line[-1].box[3]), None)
        if home is None:
            lines.append([box])
        else:
            home.append(box)
    return [_merge(sorted(line, key=lambda b: b.box[0])) for line in lines]


def _merge(line: list[TextLine]) -> TextLine:
    bounds = (min(b.box[0] for b in line), min(b.box[1] for b in line),
              max(b.box[2] for b in line), max(b.box[3] for b in line))
    return TextLine(" ".join(b.text for b in line), min(b.confidence for b in line), bounds)
