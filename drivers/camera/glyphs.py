"""Fonts the simulator draws with: OpenCV's Hershey fonts, TrueType files found on the system, and
16×16 bitmaps of the Chinese plate characters for a system without a CJK font."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
CJK_FONTS = ("wqy/wqy-zenhei.ttc", "wqy-zenhei.ttc", "noto/NotoSansCJK-Regular.ttc", "droid/DroidSansFallbackFull.ttf")

BITMAPS: dict[str, tuple[int, ...]] = {
    "粤": (0x0000, 0x0000, 0x0300, 0x1FF8, 0x14AC, 0x16EC, 0x17FC, 0x13EC, 0x16BC, 0x1FFC, 0x1000, 0x7FFF,
          0x0600, 0x07F8, 0x0008, 0x0008),
    "港": (0x0000, 0x0120, 0x4120, 0x2120, 0x2FFC, 0x0120, 0xC120, 0x4FFC, 0x1320, 0x0210, 0x27F8, 0x2E2C,
          0x3A24, 0x63E0, 0x4208, 0x4208),
    "澳": (0x0000, 0x0000, 0x20C0, 0x33FC, 0x1A44, 0x0354, 0x42F4, 0x23FC, 0x0AE4, 0x0BF4, 0x1344, 0x1040,
          0x17FE, 0x30E0, 0x20B0, 0x230C),
}
"""The province and series characters of Guangdong plates, one 16-bit row each (bit 15 = left)."""


@dataclass(frozen=True)
class Font:
    """A Hershey font (`hershey` = cv2 font id) or a TrueType file (`path`), and its stroke weight."""

    name: str
    hershey: int = -1
    path: str = ""
    thickness: int = 2


def find_font(relative: str) -> str:
    """The full path of a font file under the usual system folders, or "" when absent."""
    for folder in FONT_DIRS:
        if (folder / relative).is_file():
            return str(folder / relative)
    return ""


def cjk_font() -> str:
    """A system font with the Chinese plate characters, or "" (the bitmaps are used)."""
    return next((p for p in map(find_font, CJK_FONTS) if p), "")


def draw_text(img: np.ndarray, text: str, x: int, y: int, height: int, font: Font, color: tuple[int, int, int],
              width: int | None = None) -> None:
    """Draw `text` with its top-left corner at (x, y), `height` pixels tall (stretched to `width` when given)."""
    glyphs = _render(text, height, font)
    if width is not None and glyphs.shape[1] > 0:
        glyphs = cv2.resize(glyphs, (width, height), interpolation=cv2.INTER_AREA)
    _blend(img, glyphs, x, y, color)


def text_width(text: str, height: int, font: Font) -> int:
    """How wide `text` is drawn at `height`."""
    return int(_render(text, height, font).shape[1])


def _render(text: str, height: int, font: Font) -> np.ndarray:
    """A float mask (0..1) of the text, `height` tall; CJK characters come from a CJK font or the bitmaps."""
    parts = [_cjk(c, height) if is_cjk(c) else _latin(c, height, font) for c in text]
    gap = np.zeros((height, max(1, height // 10)), np.float32)
    pieces = [p for part in parts for p in (part, gap)][:-1]
    return np.hstack(pieces) if pieces else np.zeros((height, 0), np.float32)


def is_cjk(char: str) -> bool:
    """A Chinese character (drawn from the CJK font or the bitmaps, never from the plate's Latin font)."""
    return "\u4e00" <= char <= "\u9fff"


def can_draw(char: str) -> bool:
    """Whether this system can draw the character: any with a CJK font, else only the bitmaps' ones."""
    return not is_cjk(char) or char in BITMAPS or bool(cjk_font())


@lru_cache(maxsize=4096)
def _latin(char: str, height: int, font: Font) -> np.ndarray:
    if char == " ":
        return np.zeros((height, height // 3), np.float32)
    if char == "·":
        dot = np.zeros((height, height // 3), np.float32)
        cv2.circle(dot, (height // 6, height // 2), max(1, height // 12), 1.0, -1, cv2.LINE_AA)
        return dot
    if font.path:
        return _truetype(char, height, font.path)
    return _hershey(char, height, font)


def _hershey(char: str, height: int, font: Font) -> np.ndarray:
    scale = cv2.getFontScaleFromHeight(font.hershey, height, font.thickness)
    (w, h), base = cv2.getTextSize(char, font.hershey, scale, font.thickness)
    canvas = np.zeros((h + base + 4, w + 4), np.uint8)
    cv2.putText(canvas, char, (2, h + 2), font.hershey, scale, 255, font.thickness, cv2.LINE_AA)
    return _fit(canvas, height)


def _truetype(char: str, height: int, path: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(path, int(height * 1.35))
    left, top, right, bottom = face.getbbox(char)
    canvas = Image.new("L", (max(1, int(right - left)) + 4, max(1, int(bottom - top)) + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), char, font=face, fill=255)
    return _fit(np.asarray(canvas), height)


@lru_cache(maxsize=256)
def _cjk(char: str, height: int) -> np.ndarray:
    path = cjk_font()
    if path:
        return _truetype(char, height, path)
    if char not in BITMAPS:
        raise ValueError(f"no CJK font is installed and there is no bitmap for {char!r}: see glyphs.CJK_FONTS")
    bits = np.array([[(row >> (15 - i)) & 1 for i in range(16)] for row in BITMAPS[char]], np.uint8) * 255
    return cv2.resize(bits, (height, height), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255


def _fit(mask: np.ndarray, height: int) -> np.ndarray:
    """The mask cropped to its ink and scaled to `height` (aspect kept)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros((height, height // 3), np.float32)
    ink = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    return cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _blend(img: np.ndarray, mask: np.ndarray, x: int, y: int, color: tuple[int, int, int]) -> None:
    """Paint `color` through `mask` onto `img` at (x, y), clipped to the image."""
    h = min(mask.shape[0], img.shape[0] - y)
    w = min(mask.shape[1], img.shape[1] - x)
    if h <= 0 or w <= 0 or x < 0 or y < 0:
        return
    alpha = mask[:h, :w, None]
    region = img[y:y + h, x:x + w].astype(np.float32)
    img[y:y + h, x:x + w] = (region * (1 - alpha) + np.array(color, np.float32) * alpha).astype(np.uint8)
