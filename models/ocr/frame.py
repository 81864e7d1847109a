"""One camera crop → typed reads: text lines from the reader, the boxed check digit, the format rules.

The detector does not find an ISO 6346 check digit inside its painted box (the box's edges are
not text to it), so when a line holds an owner code and serial without one, the recogniser alone
reads the region just right of the line, where the box is painted.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from models.ocr import iso6346, plates
from models.ocr.classify import CONTAINER, Read, reads_for
from models.ocr.reader import TextLine, TextReader

OWNER_SERIAL = re.compile(r"^[A-Z]{3}[UJZ]\d{6}$")
BOX_EDGES = re.compile(r"[\[\]|()【】口囗{}<>]")
BOX_PER_TEXT = 1.25
"""A line's box height per text height, as the detector draws it at full resolution."""
INK_ROW_SHARE = 0.3
"""A row belongs to the text when it holds at least this share of the inkiest row's ink."""
INK_CONTRAST = 8
"""Grey levels by which ink differs from the mean around it."""


class FrameReader:
    """Reads the plates or container codes of one crop (blocking)."""

    def __init__(self, reader: TextReader | None = None) -> None:
        self.reader = reader or TextReader()

    def read(self, kind: str, crop: np.ndarray) -> list[Read]:
        """The reads of `kind` ("plate" or "container") on the crop."""
        lines = self.reader.read_lines(crop)
        if kind == CONTAINER:
            lines = [self._with_check_digit(crop, line) for line in lines]
        return reads_for(kind, lines)

    def _with_check_digit(self, crop: np.ndarray, line: TextLine) -> TextLine:
        """The line read again with the painted box's edges removed, when the detector left out its check digit."""
        if not OWNER_SERIAL.match(iso6346.coerce(plates.normalise(line.text))[0]):
            return line
        x0, y0, x1, y1 = _tight(crop, line.box)
        h = y1 - y0
        top, bottom, right = max(0, y0 - h // 3), min(crop.shape[0], y1 + h // 3), min(crop.shape[1], x1 + 2 * h)
        again = self.reader.recognise(without_box(crop[top:bottom, max(0, x0 - h // 4):right], h))
        text = BOX_EDGES.sub("", plates.normalise(again.text))
        if len(text) != 11 or not text[-1].isdigit():
            return line
        # the detector's line keeps its owner code and serial; the second reading only adds the check digit
        return TextLine(f"{line.text} {text[-1]}", min(line.confidence, again.confidence), (x0, y0, right, y1))


def _tight(crop: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The line's box with its height fitted to the text's ink (on its left part, away from a painted box): the
    detector's box is looser the smaller the image it ran on, and where the painted box is looked for and how
    its edges are told from strokes both scale with that height."""
    x0, y0, x1, y1 = box
    top, bottom = ink_rows(crop[y0:y1, x0:x0 + (x1 - x0) * 3 // 5])  # the owner code's side, far from the box
    if bottom - top < 4:
        return box
    h = round((bottom - top) * BOX_PER_TEXT)
    centre = y0 + (top + bottom) // 2
    return x0, max(0, centre - h // 2), x1, min(crop.shape[0], centre + h - h // 2)


def ink_rows(region: np.ndarray) -> tuple[int, int]:
    """The first and past-the-last row of the text in a line's region (light-on-dark or dark-on-light)."""
    if region.size == 0:
        return 0, region.shape[0]
    rows = _ink(region, max(3, region.shape[0])).mean(axis=1)
    if rows.max() <= 0:
        return 0, region.shape[0]
    on = np.nonzero(rows >= INK_ROW_SHARE * rows.max())[0]
    return int(on[0]), int(on[-1]) + 1


def _ink(region: np.ndarray, block: int) -> np.ndarray:
    """The text's pixels as 255 on 0: its polarity from Otsu's split (the smaller side is ink), each pixel
    against the mean around it (`block` wide), so that a glare spot or a shadow is not taken for ink."""
    grey = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY) if region.ndim == 3 else region
    _, split = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light_text = split.mean() <= 127
    kind = cv2.THRESH_BINARY if light_text else cv2.THRESH_BINARY_INV
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, kind, block | 1,
                                 -INK_CONTRAST if light_text else INK_CONTRAST)


def without_box(region: np.ndarray, line_h: int) -> np.ndarray:
    """The region with long straight strokes (a painted box's edges, longer than any character's) painted over."""
    text_h = max(4, int(line_h / BOX_PER_TEXT))
    ink = _ink(region, text_h)
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, int(text_h * 1.2))))
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN,
                                  cv2.getStructuringElement(cv2.MORPH_RECT, (int(text_h * 0.9), 1)))
    edges = cv2.dilate(cv2.bitwise_or(vertical, horizontal), np.ones((5, 5), np.uint8))
    if not edges.any():
        return region
    return cv2.inpaint(region, edges, 3, cv2.INPAINT_TELEA)
