"""The camera simulator: vehicles with plates and containers, rendered as each role's camera sees them.

Vehicle n of a seed is the same on every camera of the station (front, rear, container), so
cameras triggered by the same eyes see the same vehicle. Two render sets: `tuning` (Hershey
simplex/duplex and DejaVu Sans Bold; angle, blur, dirt), used to choose thresholds, and
`held_out` (other fonts, and glare, night infrared and occlusion besides), used only to report.

For diagnostics the camera can show a test target instead (`show_test_target`: a plate or container
code held square and still in front of it, as a technician holds the station's test plate), and
has two optical faults for tests: `defocus_sigma` (a lens out of focus) and `gain` (over- or
under-exposure).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.camera import render
from drivers.camera.config import CameraConfig
from drivers.camera.frames import CameraBase
from drivers.camera.glyphs import Font, can_draw, find_font
from drivers.simlane import Described, lane
from models.ocr.iso6346 import check_digit
from models.ocr.plates import PROVINCES

HK_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
GD_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
CN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
GUANGDONG_SHARE = 0.7
"""Of the mainland vehicles, the share registered in Guangdong (the rest in other provinces)."""
NEW_ENERGY_SHARE = 0.3
"""Of the mainland vehicles, the share with a green new-energy plate."""
ROLES = ("front_plate", "rear_plate", "container_side", "container_door")
TEST_CONDITIONS = render.Conditions(angle_deg=2, blur_px=0, dirt=0, noise=2)
"""A test target is held square and still in good light: only sensor noise and a slight angle."""
TEST_NUMBER = 1_000_000
"""The vehicle number a test target's scene is drawn with (no simulated vehicle has it)."""
SIZE_TYPES = ("22G1", "42G1", "45G1", "L5G1", "22R1", "45R1", "22U1", "42P1")


@dataclass(frozen=True)
class Profile:
    fonts: tuple[Font, ...]
    conditions: render.Conditions


def _fonts(*candidates: Font) -> tuple[Font, ...]:
    """The candidates whose font file exists on this system (Hershey fonts always do)."""
    found = []
    for font in candidates:
        path = find_font(font.path) if font.path else ""
        if font.hershey >= 0 or path:
            found.append(Font(font.name, font.hershey, path, font.thickness))
    return tuple(found)


PROFILES: dict[str, Profile] = {
    "tuning": Profile(_fonts(Font("hershey-simplex", cv2.FONT_HERSHEY_SIMPLEX, thickness=3),
                             Font("hershey-duplex", cv2.FONT_HERSHEY_DUPLEX, thickness=3),
                             Font("dejavu-sans-bold", path="dejavu/DejaVuSans-Bold.ttf")),
                      render.Conditions(angle_deg=12, blur_px=5, dirt=0.3)),
    "held_out": Profile(_fonts(Font("hershey-triplex", cv2.FONT_HERSHEY_TRIPLEX, thickness=3),
                               Font("liberation-sans-bold", path="liberation/LiberationSans-Bold.ttf"),
                               Font("liberation-narrow-bold", path="liberation/LiberationSansNarrow-Bold.ttf"),
                               Font("dejavu-condensed-bold", path="dejavu/DejaVuSansCondensed-Bold.ttf"),
                               Font("liberation-mono-bold", path="liberation/LiberationMono-Bold.ttf")),
                        render.Conditions(angle_deg=20, blur_px=7, dirt=0.4, glare=0.3, night_ir=0.3,
                                          occlusion=0.3, noise=6.0)),
}


@dataclass(frozen=True)
class Vehicle:
    """What vehicle n carries: its Hong Kong plate and a Guangdong cross-boundary plate or "", or for a
    mainland vehicle only its mainland plate (`cn_plate`, blue or new-energy green); its container and size/type."""

    number: int
    hk_plate: str
    gd_plate: str
    container: str
    size_type: str
    font: Font
    obscured: str = ""  # "dirt" or "glare" over the Hong Kong plate: it cannot be read
    cn_plate: str = ""


def described_vehicle(item: Described, profile: str = "tuning") -> Vehicle:
    """A simulated lane's vehicle (drivers/simlane.py) as the cameras see it."""
    fonts = PROFILES[profile].fonts
    return Vehicle(item.number, item.hk_plate, item.gd_plate, item.container, item.size_type,
                   fonts[item.number % len(fonts)], item.obscured)


def vehicle(seed: int, number: int, profile: str = "tuning", cross_boundary: float = 0.5,
            mainland: float = 0.0) -> Vehicle:
    """Vehicle `number` of `seed`: the same on every call and every camera. A share `mainland` of the
    vehicles are mainland ones, drawn from a stream of their own so that the others stay as they were."""
    rng = np.random.default_rng([seed, number, 1])
    letters = "".join(rng.choice(list(HK_LETTERS), int(rng.integers(1, 3))))
    digits = str(int(rng.integers(1, 10))) + "".join(rng.choice(list(string.digits), int(rng.integers(0, 4))))
    gd = ""
    if rng.random() < cross_boundary:
        gd = "粤Z" + "".join(rng.choice(list(GD_CHARS), 4)) + str(rng.choice(["港", "澳"]))
    owner = "".join(rng.choice(list(string.ascii_uppercase), 3)) + "U"
    serial = "".join(rng.choice(list(string.digits), 6))
    code = owner + serial + str(check_digit(owner + serial))
    fonts = PROFILES[profile].fonts
    v = Vehicle(number, letters + digits, gd, code, str(rng.choice(SIZE_TYPES)), fonts[int(rng.integers(0, len(fonts)))])
    own = np.random.default_rng([seed, number, 4])
    if own.random() < mainland:
        return Vehicle(number, "", "", v.container, v.size_type, v.font, cn_plate=mainland_plate(own))
    return v


def mainland_plate(rng: np.random.Generator) -> str:
    """A mainland plate (without separators): mostly Guangdong's; blue `粤B12345` (at most two letters among
    the last five) or new-energy `粤BD12345` / `粤B12345D`."""
    others = [p for p in PROVINCES if p != "粤" and can_draw(p)]
    province = "粤" if rng.random() < GUANGDONG_SHARE or not others else str(rng.choice(others))
    office = str(rng.choice(list(CN_LETTERS[:-1] if province == "粤" else CN_LETTERS)))  # 粤Z is the HK/Macao series
    if rng.random() < NEW_ENERGY_SHARE:
        if rng.random() < 0.8:  # a small vehicle's: D or F, a letter or digit, four digits
            tail = str(rng.choice(["D", "F"])) + str(rng.choice(list(CN_LETTERS + string.digits))) + _digits(rng, 4)
        else:  # a large vehicle's: five digits, D or F
            tail = _digits(rng, 5) + str(rng.choice(["D", "F"]))
        return province + office + tail
    chars = [str(c) for c in rng.choice(list(string.digits), 5)]
    for i in rng.choice(5, int(rng.choice([0, 1, 2], p=[0.5, 0.3, 0.2])), replace=False):
        chars[int(i)] = str(rng.choice(list(CN_LETTERS)))
    return province + office + "".join(chars)


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.choice(list(string.digits), n))


def scene(v: Vehicle, role: str, seed: int) -> np.ndarray:
    """The still scene a camera of `role` looks at (before motion and conditions)."""
    rng = np.random.default_rng([seed, v.number, 2, ROLES.index(role)])
    if role in ("front_plate", "rear_plate") and v.cn_plate:
        return render.vehicle_front([render.mainland_plate(issued(v.cn_plate), v.font)], rng)
    if role in ("front_plate", "rear_plate"):
        hk = render.hk_plate(_spaced(v.hk_plate), rear=role == "rear_plate", font=v.font)
        if v.obscured:
            hk = render.obscure(hk, v.obscured, rng)
        plates = [render.gd_plate(f"{v.gd_plate[:2]}·{v.gd_plate[2:]}", v.font), hk] if v.gd_plate else [hk]
        return render.vehicle_front(plates, rng)
    if not v.container:
        return render.bare_panel(rng)
    return render.container_panel(v.container, v.size_type, v.font, rng)


def issued(cn: str) -> str:
    """A mainland plate as issued: `粤B·12345` (blue), `粤B D12345` (new-energy, no dot)."""
    return f"{cn[:2]}·{cn[2:]}" if len(cn) == 7 else f"{cn[:2]} {cn[2:]}"


def _spaced(hk: str) -> str:
    """A Hong Kong plate as issued: letters, a space, digits."""
    split = len(hk) - len(hk.lstrip(HK_LETTERS))
    return f"{hk[:split]} {hk[split:]}"


def frame(v: Vehicle, role: str, index: int, seed: int, profile: str = "tuning") -> np.ndarray:
    """Frame `index` of the vehicle's pass: it comes closer frame by frame, under the profile's conditions."""
    still = scene(v, role, seed)
    rng = np.random.default_rng([seed, v.number, 3, ROLES.index(role), index])
    scale = 0.85 + 0.05 * index + rng.uniform(-0.02, 0.02)
    h, w = still.shape[:2]
    moved = cv2.resize(still, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full_like(still, int(rng.integers(50, 100)))
    _paste_centre(canvas, moved)
    return render.apply(canvas, PROFILES[profile].conditions, rng)


def test_frame(target: Vehicle, role: str, index: int, seed: int) -> np.ndarray:
    """Frame `index` of a test target held in front of a camera of `role`."""
    rng = np.random.default_rng([seed, 4, ROLES.index(role), index])
    return render.apply(scene(target, role, seed), TEST_CONDITIONS, rng)


def test_target(plate: str, container: str) -> Vehicle:
    """A test target: a Hong Kong plate (front and rear cameras) and a container code (container cameras)."""
    return Vehicle(TEST_NUMBER, plate, "", container, "45G1", PROFILES["tuning"].fonts[0])


def optics(image: np.ndarray, defocus_sigma: float, gain: float) -> np.ndarray:
    """The image through a lens defocused by `defocus_sigma` pixels and an exposure `gain` (1 = as set)."""
    if defocus_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), defocus_sigma)
    if gain != 1.0:
        image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return image


def _paste_centre(canvas: np.ndarray, img: np.ndarray) -> None:
    ch, cw = canvas.shape[:2]
    h, w = img.shape[:2]
    sy, sx = max(0, (h - ch) // 2), max(0, (w - cw) // 2)
    dy, dx = max(0, (ch - h) // 2), max(0, (cw - w) // 2)
    hh, ww = min(h, ch), min(w, cw)
    canvas[dy:dy + hh, dx:dx + ww] = img[sy:sy + hh, sx:sx + ww]


class SimCamera(CameraBase):
    """A simulated camera: each trigger brings the next vehicle; every `bad_every`-th frame is broken."""

    def __init__(self, cfg: CameraConfig, name: str) -> None:
        super().__init__(cfg, name)
        assert cfg.sim is not None
        self.sim = cfg.sim
        self.vehicle_number = -1
        self.target: Vehicle | None = None
        self.defocus_sigma = 0.0
        self.gain = 1.0
        self._described: Described | None = None
        self._index = 0
        self._grabs = 0

    def show_test_target(self, plate: str, container: str) -> None:
        """A test target held in front of the camera until `hide_test_target` (the diagnostics' test plate)."""
        self.target = test_target(plate, container)

    def hide_test_target(self) -> None:
        self.target = None

    @property
    def vehicle(self) -> Vehicle:
        """The vehicle in front of the camera now (the truth the tests and the benchmark compare with)."""
        if self._described is not None:
            return described_vehicle(self._described, self.sim.profile)
        return vehicle(self.sim.seed, max(self.vehicle_number, 0), self.sim.profile, self.sim.cross_boundary,
                       self.sim.mainland)

    def _on_trigger(self) -> None:
        self.vehicle_number += 1
        self._index = 0
        if self.sim.lane:
            self._described = lane(self.sim.lane).latest

    def _open(self) -> None:
        """Nothing to open."""

    def _grab(self) -> np.ndarray | None:
        self._grabs += 1
        if self.target is not None:
            image = test_frame(self.target, self.cfg.role, self._index, self.sim.seed)
        else:
            image = frame(self.vehicle, self.cfg.role, self._index, self.sim.seed, self.sim.profile)
        image = optics(image, self.defocus_sigma, self.gain)
        self._index += 1
        if self.sim.bad_every and self._grabs % self.sim.bad_every == 0:
            return image[:0] if self._grabs % 2 else None
        return image
