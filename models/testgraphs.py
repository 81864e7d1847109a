"""Small ONNX detectors with predictable outputs, for tests and benchmarks (needs the `onnx` package).

Every graph finds squares of SQUARE pixels by average attenuation over a SQUARE window centred on
each cell of a stride-STRIDE grid: class 0 ("metal") when the high channel is dark, class 1
("organic") when the low channel is much darker than the high. Boxes are SQUARE-sized around the
cell centre, so a square whose top-left corner is at 4 mod 8 comes back with its exact box.
`backbone=True` adds a small CNN of realistic cost whose (tiny) contribution keeps it in the graph.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDE = 8
SQUARE = 32
CLASSES = ("metal", "organic")
GAIN, BIAS = 80.0, (0.8, 0.6)


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def _logit_nodes(channels: tuple[str, ...], backbone: bool) -> tuple[list, list]:
    """Nodes computing class logits [1, 2, T/8, T/8] from input `x`."""
    c = len(channels)
    w = np.zeros((2, c, SQUARE, SQUARE), np.float32)
    share = {"high": channels.count("high"), "low": channels.count("low")}
    for i, name in enumerate(channels):
        unit = GAIN / SQUARE**2 / share[name]
        w[0, i] = unit if name == "high" else 0.0
        w[1, i] = unit if name == "low" else -unit
    b = -GAIN * np.array(BIAS, np.float32)
    pad = (SQUARE - STRIDE) // 2
    inits = [_init("w_avg", w), _init("b_avg", b)]
    nodes = [helper.make_node("Conv", ["x", "w_avg", "b_avg"], ["logits" if not backbone else "avg"],
                              kernel_shape=[SQUARE, SQUARE], strides=[STRIDE, STRIDE], pads=[pad] * 4)]
    if backbone:
        n2, i2 = _backbone(c)
        nodes += n2 + [helper.make_node("Add", ["avg", "feat"], ["logits"])]
        inits += i2
    return nodes, inits


def _backbone(c: int) -> tuple[list, list]:
    """Conv stack (stride 8 overall, about 1 GMAC at 640x640) whose output is scaled by 1e-6."""
    rng = np.random.default_rng(7)
    widths = [c, 16, 32, 64, 64, 64]
    strides = [2, 2, 2, 1, 1]
    nodes, inits, prev = [], [], "x"
    for i, (cin, cout, s) in enumerate(zip(widths, widths[1:], strides)):
        inits += [_init(f"bw{i}", rng.normal(0, 0.1, (cout, cin, 3, 3))), _init(f"bb{i}", np.zeros(cout))]
        nodes += [helper.make_node("Conv", [prev, f"bw{i}", f"bb{i}"], [f"bc{i}"], kernel_shape=[3, 3],
                                   strides=[s, s], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"bc{i}"], [f"br{i}"])]
        prev = f"br{i}"
    inits += [_init("hw", rng.normal(0, 1e-6, (2, widths[-1], 1, 1))), _init("hb", np.zeros(2))]
    nodes.append(helper.make_node("Conv", [prev, "hw", "hb"], ["feat"], kernel_shape=[1, 1]))
    return nodes, inits


def _grid(tile: int) -> tuple[np.ndarray, int]:
    """Cell centres (2, N) in row-major order."""
    n = tile // STRIDE
    r, c = np.mgrid[0:n, 0:n]
    return np.stack([(c.ravel() + 0.5) * STRIDE, (r.ravel() + 0.5) * STRIDE]).astype(np.float32), n * n


def _fcos(tile: int) -> tuple[list, list, list]:
    nodes = [helper.make_node("Sigmoid", ["logits"], ["scores"]),
             helper.make_node("Conv", ["x_one", "w_ltrb", "b_ltrb"], ["ltrb"], kernel_shape=[1, 1],
                              strides=[STRIDE, STRIDE])]
    return nodes, [], ["scores", "ltrb"]


def _yolo_common(tile: int) -> tuple[list, list]:
    """Class probabilities `probs` [1, 2, N] and boxes `cxcywh` [1, 4, N]."""
    centres, n = _grid(tile)
    wh = np.full((2, n), SQUARE, np.float32)
    inits = [_init("cxcywh", np.concatenate([centres, wh])[None]),
             numpy_helper.from_array(np.array([1, 2, n], np.int64), "shape_kn")]
    nodes = [helper.make_node("Sigmoid", ["logits"], ["sig"]),
             helper.make_node("Reshape", ["sig", "shape_kn"], ["probs"])]
    return nodes, inits


def _yolov8(tile: int) -> tuple[list, list, list]:
    nodes, inits = _yolo_common(tile)
    nodes.append(helper.make_node("Concat", ["cxcywh", "probs"], ["output0"], axis=1))
    return nodes, inits, ["output0"]


def _yolov5(tile: int) -> tuple[list, list, list]:
    """obj = max class probability, cls = probability / obj: wrong scores unless score = obj * cls."""
    nodes, inits = _yolo_common(tile)
    inits.append(_init("eps", np.array(1e-6)))
    nodes += [helper.make_node("ReduceMax", ["probs"], ["obj"], axes=[1], keepdims=1),
              helper.make_node("Add", ["obj", "eps"], ["obj_eps"]),
              helper.make_node("Div", ["probs", "obj_eps"], ["cls"]),
              helper.make_node("Concat", ["cxcywh", "obj", "cls"], ["cat"], axis=1),
              helper.make_node("Transpose", ["cat"], ["output0"], perm=[0, 2, 1])]
    return nodes, inits, ["output0"]


def _out_shape(name: str, fmt: str, tile: int, transposed: bool) -> list[int]:
    n = tile // STRIDE
    k = len(CLASSES)
    shape = {"scores": [1, k, n, n], "ltrb": [1, 4, n, n]}.get(name) or (
        [1, 4 + k, n * n] if fmt == "yolov8" else [1, n * n, 5 + k])
    return [shape[0], shape[2], shape[1]] if transposed else shape


HEADS = {"cpe-fcos-v1": _fcos, "yolov8": _yolov8, "yolov5": _yolov5}


def build_model(fmt: str = "cpe-fcos-v1", tile: int = 128, channels: tuple[str, ...] = ("high", "low"),
                backbone: bool = False, transposed: bool = False, nan_on_objects: bool = False,
                score_op: str = "Sigmoid", dynamic: bool = False) -> bytes:
    """Serialised ONNX model of output layout `fmt` for square tiles of `tile` pixels.

    `transposed` swaps the last two axes of a YOLO output (some tool-chains export it that way).
    `nan_on_objects`: the logits are NaN wherever a class would fire (a broken model: blank tiles, as in the
    warm-up, still give finite values).
    `score_op` makes the scores of the logits: "Identity" gives the logits themselves (an export without its sigmoid,
    -64 on a blank tile), "Relu" gives 0 on a blank tile and up to 16 on an object.
    `dynamic` leaves the tile's height and width open in the graph (named dimensions; cpe-fcos-v1 only): the
    manifest alone says how large a tile is.
    """
    c = len(channels)
    nodes, inits = _logit_nodes(channels, backbone)
    if nan_on_objects:  # logits + 0·sqrt(−logits): NaN where the logit is positive
        nodes[-1].output[0] = "logits_raw"
        nodes += [helper.make_node("Neg", ["logits_raw"], ["neg"]), helper.make_node("Sqrt", ["neg"], ["root"]),
                  helper.make_node("Mul", ["root", "zero"], ["zeroed"]),
                  helper.make_node("Add", ["logits_raw", "zeroed"], ["logits"])]
        inits.append(_init("zero", np.zeros(1)))
    head_nodes, head_inits, outputs = HEADS[fmt](tile)
    for node in head_nodes:
        if node.op_type == "Sigmoid":
            node.op_type = score_op
    if transposed:
        head_nodes[-1].output[0] = "pre_t"
        head_nodes.append(helper.make_node("Transpose", ["pre_t"], ["output0"], perm=[0, 2, 1]))
    inits += head_inits
    if fmt == "cpe-fcos-v1":
        inits += [_init("w_ltrb", np.zeros((4, 1, 1, 1))), _init("b_ltrb", np.full(4, SQUARE / 2))]
        nodes.append(helper.make_node("Slice", ["x", "s0", "s1", "s_ax"], ["x_one"]))
        inits += [numpy_helper.from_array(np.array(a, np.int64), n)
                  for n, a in (("s0", [0]), ("s1", [1]), ("s_ax", [1]))]
    graph = helper.make_graph(
        nodes + head_nodes, f"test-{fmt}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, "height", "width"] if dynamic
                                       else [1, c, tile, tile])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None if dynamic and i >= 2 else d for i, d in
                                                              enumerate(_out_shape(o, fmt, tile, transposed))])
         for o in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_package(root: Path, fmt: str = "cpe-fcos-v1", tile: int = 128, channels: tuple[str, ...] = ("high", "low"),
                  backbone: bool = False, name: str = "test-det", version: str = "1.0.0",
                  thresholds: tuple[float, float] = (0.5, 0.5), transposed: bool = False,
                  pixel_mm: float = 1.0, applies: str = "", clears: bool = True,
                  classes: tuple[str, str] = CLASSES, nan_on_objects: bool = False, score_op: str = "Sigmoid",
                  dynamic: bool = False) -> Path:
    """Write model.onnx + manifest.toml under `root`; returns `root`.

    `classes` names the graph's two outputs (metal squares, organic squares), e.g. ("load_present", "organic").

    `applies` is the body of an `[applies]` section (TOML lines), e.g. 'item_kinds = ["baggage"]'.
    """
    root.mkdir(parents=True, exist_ok=True)
    data = build_model(fmt, tile, channels, backbone, transposed, nan_on_objects, score_op, dynamic)
    (root / "model.onnx").write_bytes(data)
    stride = f"stride = {STRIDE}\n" if fmt == "cpe-fcos-v1" else ""
    class_toml = "".join(f'[[classes]]\nname = "{n}"\nthreshold = {t}\n\n' for n, t in zip(classes, thresholds))
    (root / "manifest.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nsha256 = "{hashlib.sha256(data).hexdigest()}"\n'
        f'description = "test graph: squares of {SQUARE} px"\nclears = {str(clears).lower()}\n\n'
        f"[input]\nchannels = {list(channels)!r}\nsize = [{tile}, {tile}]\n"
        f'normalisation = "attenuation"\npixel_mm = {pixel_mm}\n\n'
        f'[output]\nformat = "{fmt}"\n{stride}\n{class_toml}[evaluation]\nnote = "synthetic"\n'.replace("'", '"')
        + (f"\n[applies]\n{applies}\n" if applies else "")
    )
    return root


def paint_square(high: np.ndarray, low: np.ndarray, y: int, x: int, kind: str = "metal") -> tuple[float, ...]:
    """Paint a SQUARE-pixel object with top-left (y, x); returns its box (x0, y0, x1, y1)."""
    a_high, a_low = (1.0, 1.0) if kind == "metal" else (0.2, 0.9)
    for plane, a in ((high, a_high), (low, a_low)):
        plane[y : y + SQUARE, x : x + SQUARE] = np.uint16(round(65535 * 10 ** (-4 * a)))
    return (float(x), float(y), float(x + SQUARE), float(y + SQUARE))


def air(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty (air) high and low planes."""
    return np.full((h, w), 65535, np.uint16), np.full((h, w), 65535, np.uint16)


def case(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Planes of an empty case: air inside a 6-pixel wall of light attenuation (0.1), which the test
    graphs never detect but which makes the scan more than air."""
    high, low = air(h, w)
    wall = np.uint16(round(65535 * 10 ** (-4 * 0.1)))
    for plane in (high, low):
        plane[8:-8, 8:-8] = wall
        plane[14:-14, 14:-14] = 65535
    return high, low


def scatter(h: int, w: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """A scan with up to n non-overlapping squares on the 8-pixel grid; returns planes and (label, box)."""
    high, low = air(h, w)
    rng = np.random.default_rng(seed)
    taken = np.zeros((h // 8 + 8, w // 8 + 8), bool)
    objects = []
    for i in range(n):
        gy, gx = int(rng.integers(0, (h - 36) // 8)), int(rng.integers(0, (w - 36) // 8))
        if taken[gy : gy + 10, gx : gx + 10].any():
            continue
        taken[max(gy - 6, 0) : gy + 10, max(gx - 6, 0) : gx + 10] = True
        kind = CLASSES[i % 2]
        objects.append((kind, paint_square(high, low, gy * 8 + 4, gx * 8 + 4, kind)))
    return high, low, objects
