"""What the cameras see, drawn: plates and container codes in their scenes, under the lane's conditions.

Hong Kong plates are black on white (front) or yellow (rear); Guangdong cross-boundary plates
(粤Z·A123港) are white on black and sit above the Hong Kong plate; a mainland vehicle's own plate is
white on blue (粤B·12345) or, for a new-energy vehicle, black on a white-to-green gradient (粤B D12345,
one character longer); container codes are painted on a
corrugated door or side, owner code + serial, the check digit boxed, the size/type code below.
Conditions: angle (perspective), motion blur, dirt, glare, night infrared and partial occlusion.
Everything is drawn from one `numpy.random.Generator`: the same seed gives the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from drivers.camera.glyphs import Font, draw_text, text_width

BLACK, WHITE, YELLOW = (20, 20, 20), (245, 245, 245), (40, 200, 250)  # BGR
BLUE, LIGHT_GREEN, GREEN = (160, 70, 15), (225, 245, 230), (90, 190, 60)  # BGR


@dataclass(frozen=True)
class Conditions:
    """The lane's conditions as ranges: each frame draws its own within them (0 disables one)."""

    angle_deg: float = 12.0  # yaw of the target against the camera, either way
    blur_px: int = 5  # longest motion-blur streak
    dirt: float = 0.3  # chance of dirt on a frame
    glare: float = 0.0  # chance of a glare spot
    night_ir: float = 0.0  # chance the frame is a night infrared one
    occlusion: float = 0.0  # chance of a bar across part of the text
    noise: float = 4.0  # sensor noise, grey levels


def hk_plate(text: str, rear: bool, font: Font) -> np.ndarray:
    """A Hong Kong plate (520 × 110 mm at 0.5 px/mm): `AB 1234`, black on white front or yellow rear."""
    plate = np.full((56, 262, 3), YELLOW if rear else WHITE, np.uint8)
    cv2.rectangle(plate, (1, 1), (260, 54), BLACK, 2)
    _centred(plate, text, 38, font, BLACK)
    return plate


def gd_plate(text: str, font: Font) -> np.ndarray:
    """A Guangdong plate (440 × 140 mm): `粤Z·A123港`, white on black with a white rim."""
    plate = np.full((70, 222, 3), BLACK, np.uint8)
    cv2.rectangle(plate, (3, 3), (218, 66), WHITE, 1)
    _centred(plate, text, 44, font, WHITE)
    return plate


def mainland_plate(text: str, font: Font) -> np.ndarray:
    """A mainland plate: blue (440 × 140 mm) with white `粤B·12345`, or a new-energy one (480 × 140 mm,
    eight characters) with black `粤B D12345` on a gradient from white at the top to green at the bottom."""
    if len(text.replace("·", "").replace(" ", "")) == 7:
        plate = np.full((70, 222, 3), BLUE, np.uint8)
        cv2.rectangle(plate, (3, 3), (218, 66), WHITE, 1)
        _centred(plate, text, 44, font, WHITE)
        return plate
    share = np.linspace(0.0, 1.0, 70, dtype=np.float32)[:, None, None]
    rows = np.array(LIGHT_GREEN, np.float32) * (1 - share) + np.array(GREEN, np.float32) * share
    plate = np.repeat(rows, 242, axis=1).astype(np.uint8)
    cv2.rectangle(plate, (2, 2), (239, 67), BLACK, 1)
    _centred(plate, text, 44, font, BLACK)
    return plate


def _centred(img: np.ndarray, text: str, height: int, font: Font, color: tuple[int, int, int]) -> None:
    width = min(text_width(text, height, font), img.shape[1] - 16)
    draw_text(img, text, (img.shape[1] - width) // 2, (img.shape[0] - height) // 2, height, font, color, width)


def container_panel(code: str, size_type: str, font: Font, rng: np.random.Generator,
                    size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A corrugated container door/side with `CSQU 305438 [3]` and `45G1` painted at its upper right."""
    w, h = size
    base = np.array(rng.choice([(40, 40, 170), (150, 80, 30), (40, 120, 40), (130, 130, 130), (30, 110, 220)]),
                    np.float32)
    ribs = 0.75 + 0.25 * np.sin(np.arange(w) * 2 * np.pi / rng.uniform(24, 40))
    panel = (base[None, None, :] * ribs[None, :, None] * np.ones((h, 1, 1), np.float32)).astype(np.uint8)
    ink = WHITE if base.mean() < 140 else BLACK
    height = int(rng.integers(34, 44))
    owner, serial, check = code[:4], code[4:10], code[10]
    x, y = int(rng.integers(w // 12, w // 5)), int(rng.integers(30, 80))
    for part in (owner, serial):
        draw_text(panel, part, x, y, height, font, ink)
        x += text_width(part, height, font) + height // 2
    pad = height // 4
    draw_text(panel, check, x + pad, y, height, font, ink)
    cw = text_width(check, height, font)
    cv2.rectangle(panel, (x, y - pad), (x + cw + 2 * pad, y + height + pad), ink, 2)
    draw_text(panel, size_type, int(rng.integers(w // 12, w // 4)), y + height * 2, height, font, ink)
    return panel


def obscure(plate: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """A plate no camera can read: caked with road dirt, or under a glare that washes out its middle."""
    out = plate.copy()
    h, w = plate.shape[:2]
    if how == "glare":
        yy, xx = np.mgrid[0:h, 0:w]
        spot = np.exp(-((xx - w * rng.uniform(0.4, 0.6)) ** 2 / (2 * (w * 0.28) ** 2) + (yy - h / 2) ** 2 / (2 * h * h)))
        return np.clip(out.astype(np.float32) + 400 * spot[:, :, None], 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(14, 20))):
        centre = (int(rng.integers(w // 8, w - w // 8)), int(rng.integers(h // 4, h - h // 4)))
        axes = (int(rng.integers(14, 30)), int(rng.integers(10, 20)))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, (50, 65, 80), -1, cv2.LINE_AA)
    return out


def bare_panel(rng: np.random.Generator, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """What a container camera sees of a vehicle without a container: the lane's far side, no code."""
    w, h = size
    return np.full((h, w, 3), int(rng.integers(60, 110)), np.uint8)


def vehicle_front(plates: list[np.ndarray], rng: np.random.Generator, size: tuple[int, int] = (480, 320)) -> np.ndarray:
    """A cab front (body, grille, lamps) with its plates stacked at the bottom centre, the first on top."""
    w, h = size
    scene = np.full((h, w, 3), rng.integers(60, 110), np.uint8)
    body = tuple(int(c) for c in rng.integers(30, 230, 3))
    cv2.rectangle(scene, (20, 10), (w - 20, h - 10), body, -1)
    for gy in range(40, h // 2, 14):
        cv2.line(scene, (80, gy), (w - 80, gy), (40, 40, 40), 4)
    for cx in (60, w - 60):
        cv2.circle(scene, (cx, h // 2), 22, (230, 230, 210), -1)
    y = h - 20 - sum(p.shape[0] + 8 for p in plates)
    for plate in plates:
        x = (w - plate.shape[1]) // 2 + int(rng.integers(-40, 40))
        scene[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
        y += plate.shape[0] + 8
    return scene


def apply(scene: np.ndarray, cond: Conditions, rng: np.random.Generator) -> np.ndarray:
    """The scene as the camera records it: angle, occlusion, dirt, glare, blur, night IR, noise."""
    img = _angle(scene, cond.angle_deg * rng.uniform(-1, 1))
    if rng.random() < cond.occlusion:
        img = _occlude(img, rng)
    if rng.random() < cond.dirt:
        img = _dirt(img, rng)
    if rng.random() < cond.glare:
        img = _glare(img, rng)
    if cond.blur_px > 1:
        img = _motion_blur(img, int(rng.integers(1, cond.blur_px + 1)))
    if rng.random() < cond.night_ir:
        img = _night_ir(img, rng)
    noise = rng.normal(0, cond.noise, img.shape) if cond.noise else 0
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _angle(img: np.ndarray, yaw_deg: float) -> np.ndarray:
    """A yawed view: the far side shrinks by the yaw's share of the height."""
    h, w = img.shape[:2]
    s = abs(np.sin(np.radians(yaw_deg))) * h * 0.5
    near, far = (0.0, s) if yaw_deg > 0 else (s, 0.0)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = np.array([[0, near], [w, far], [w, h - far], [0, h - near]], np.float32)
    return cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE)


def _occlude(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thin pole or wiper crossing the frame (a few pixels wide)."""
    out = img.copy()
    x = int(rng.integers(0, img.shape[1]))
    cv2.line(out, (x, 0), (x + int(rng.integers(-30, 30)), img.shape[0]), (50, 50, 50), int(rng.integers(3, 7)))
    return out


def _dirt(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.copy()
    for _ in range(int(rng.integers(3, 10))):
        centre = (int(rng.integers(0, img.shape[1])), int(rng.integers(0, img.shape[0])))
        axes = (int(rng.integers(3, 14)), int(rng.integers(2, 8)))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, (60, 70, 80), -1, cv2.LINE_AA)
    return cv2.addWeighted(img, 0.45, out, 0.55, 0)


def _glare(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(30, 80)
    spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)) * rng.uniform(80, 150)
    return np.clip(img.astype(np.float32) + spot[:, :, None], 0, 255).astype(np.uint8)


def _motion_blur(img: np.ndarray, length: int) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(img, -1, kernel)


def _night_ir(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey, low contrast, lifted blacks: what an infrared-lit camera gives at night."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    low = 70 + grey * rng.uniform(0.45, 0.65)
    return cv2.cvtColor(np.clip(low, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
