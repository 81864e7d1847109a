"""The closed loop: a candidate detector fine-tuned from officer-confirmed scans (issue 20).

    .venv/bin/python -m models.training.recipe finetune --coco STATION-reviewed.zip \\
        --base models/zoo/cpe-tiny --checkpoint checkpoint.pt --out /tmp/candidate --work /tmp/ft

Reads a station's COCO export (`GET /api/export.zip`, edge/web/export.py: annotations.json plus
scans/<sha256>.npz, as a zip or unpacked), keeps what officers confirmed, splits it by scan into
training and validation, mixes a share of simulated training scans back in (so that the model does
not forget what the simulator taught it), fine-tunes from the base model's training checkpoint and
writes a candidate package (model.onnx, manifest.toml, MODEL.md, provenance.json) for signing and
canary roll-out (docs/model-rollout.md). Everything here but `finetune` runs without torch;
docs/closed-loop.md describes the stage.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ExportFormatError, ScanFormatError
from models.applicability import ScanFacts, scan_problem
from models.manifest import Manifest, load_manifest, parse_manifest
from models.scan import Scan, load_scan
from models.training.dataset import attenuation, load, seed_ranges

ANNOTATIONS = "annotations.json"
NEGATIVE_OUTCOMES = ("false_alarm",)  # reviews whose scan holds no threat the model knows
VAL_SHARE, SIM_SHARE = 0.2, 0.5


@dataclass(frozen=True)
class Confirmed:
    """One scan an officer decided: boxes (model class, x0, y0, x1, y1 in scan pixels), none for a negative."""

    scan: str  # sha256 of the scan file (its name in the export)
    file: str  # path inside the export
    outcome: str
    boxes: tuple[tuple[str, tuple[float, float, float, float]], ...]
    station: str = ""
    decided_at: str = ""
    shape: tuple[int, int] = (0, 0)


@dataclass
class Reading:
    """What an export holds for training: the kept scans and, by reason, the images left out."""

    export: Path
    annotations_sha256: str
    created: str
    items: list[Confirmed]
    dropped: Counter[str] = field(default_factory=Counter)
    not_applicable: list[str] = field(default_factory=list)  # the first 20 "file: reason" of scans left out


class Export:
    """A station export, zipped or unpacked: named files read as bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            self._zip: zipfile.ZipFile | None = None
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise ExportFormatError(f"{path}: not a zip file nor an export folder ({exc})") from exc
        else:
            raise ExportFormatError(f"{path}: no such export (a station's reviewed.zip or the folder it unpacks to)")

    def names(self) -> set[str]:
        if self._zip is not None:
            return set(self._zip.namelist())
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def read(self, name: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(name)
            return (self.path / name).read_bytes()
        except (KeyError, OSError) as exc:
            raise ExportFormatError(f"{self.path}: {name} is missing from the export") from exc

    def scan(self, name: str) -> Scan:
        try:
            return load_scan(self.read(name))
        except ScanFormatError as exc:
            raise ExportFormatError(f"{self.path}: {name} is not a readable scan ({exc})") from exc


def _refuse(export: Path, problem: str) -> ExportFormatError:
    return ExportFormatError(f"{export}/{ANNOTATIONS}: {problem}")


def _records(doc: dict, key: str, need: tuple[str, ...], export: Path) -> dict[int, dict]:
    """The entries of doc[key] by id, each holding the `need` keys (ids unique integers)."""
    entries = doc.get(key)
    if not isinstance(entries, list):
        raise _refuse(export, f"'{key}' must be a list, got {type(entries).__name__}")
    out: dict[int, dict] = {}
    for n, e in enumerate(entries):
        missing = [k for k in need if not isinstance(e, dict) or k not in e]
        if missing:
            raise _refuse(export, f"{key}[{n}] lacks {', '.join(missing)}")
        if not isinstance(e["id"], int) or e["id"] in out:
            raise _refuse(export, f"{key}[{n}] has id {e['id']!r}, which is not a unique integer")
        out[e["id"]] = e
    return out


def _box(a: dict, img: dict, export: Path) -> tuple[float, float, float, float]:
    """[x, y, w, h] of annotation `a` as x0, y0, x1, y1, refused unless finite, positive and inside its image."""
    bbox = a["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)
            and all(math.isfinite(v) for v in bbox)):
        raise _refuse(export, f"annotation {a['id']} has bbox {bbox!r}, expected 4 finite numbers [x, y, width, height]")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0 or x < -1 or y < -1 or x + w > img["width"] + 1 or y + h > img["height"] + 1:
        raise _refuse(export, f"annotation {a['id']} has bbox {bbox!r} outside its {img['width']}×{img['height']} "
                              f"image {img['id']} or empty")
    return max(x, 0.0), max(y, 0.0), min(x + w, float(img["width"])), min(y + h, float(img["height"]))


def read_export(path: Path, classes: tuple[str, ...], label_map: dict[str, str] | None = None,
                negatives: tuple[str, ...] = NEGATIVE_OUTCOMES, check_scans: bool = True,
                manifest: Manifest | None = None) -> Reading:
    """The officer-confirmed scans of a station export, with the model's class names.

    threat_confirmed images with boxes are positives under the confirmed class (`label_map` renames an
    officer's class to a model class); images whose review outcome is in `negatives` are negatives
    without boxes. Left out, counted by reason: unreviewed images, other outcomes (cleared, override),
    confirmed threats without boxes or of a class the model lacks, and earlier reviews of a scan decided
    again; with `manifest`, scans the base model is not made for (its `[applies]`: item kind, pitch,
    energy, content, input statistics; models/applicability.py), whose first reasons are kept in
    Reading.not_applicable. A malformed export raises ExportFormatError naming the file and the problem.
    """
    export = Export(path)
    raw = export.read(ANNOTATIONS)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _refuse(path, f"must be a JSON object, got {type(doc).__name__}")
    images = _records(doc, "images", ("id", "file_name", "height", "width"), path)
    cats = _records(doc, "categories", ("id", "name"), path)
    anns = _records(doc, "annotations", ("id", "image_id", "category_id", "bbox"), path)
    boxes: dict[int, list[tuple[str, tuple[float, float, float, float]]]] = {i: [] for i in images}
    for a in anns.values():
        if a["image_id"] not in images:
            raise _refuse(path, f"annotation {a['id']} names image {a['image_id']!r}, which the export lacks")
        if a["category_id"] not in cats:
            raise _refuse(path, f"annotation {a['id']} names category {a['category_id']!r}, which the export lacks")
        img = images[a["image_id"]]
        boxes[img["id"]].append((str(cats[a["category_id"]]["name"]), _box(a, img, path)))
    mapping = label_map or {}
    names = export.names()
    dropped: Counter[str] = Counter()
    latest: dict[str, Confirmed] = {}
    for img_id, img in sorted(images.items()):
        outcome, file = img.get("review_outcome"), str(img["file_name"])
        if not all(isinstance(img[k], int) and img[k] > 0 for k in ("height", "width")):
            raise _refuse(path, f"image {img_id} has height {img['height']!r} and width {img['width']!r}, "
                                "expected positive integers")
        if file not in names:
            raise ExportFormatError(f"{path}: {file} (image {img_id}) is missing from the export")
        if outcome in negatives and boxes[img_id]:
            raise _refuse(path, f"image {img_id} is a {outcome} but carries {len(boxes[img_id])} boxes")
        if not outcome:
            dropped["unreviewed"] += 1
            continue
        if outcome == "threat_confirmed":
            labelled = [(mapping.get(label, label), b) for label, b in boxes[img_id]]
            unknown = sorted({label for label, _ in labelled if label not in classes})
            if not labelled:
                dropped["confirmed_without_boxes"] += 1
                continue
            if unknown:
                dropped[f"class_not_in_model:{','.join(unknown)}"] += 1
                continue
        elif outcome in negatives:
            labelled = []
        else:
            dropped[f"outcome:{outcome}"] += 1
            continue
        item = Confirmed(Path(file).stem, file, str(outcome), tuple(labelled), str(img.get("station", "")),
                         str(img.get("decided_at", "")), (int(img["height"]), int(img["width"])))
        earlier = latest.get(item.scan)
        if earlier is not None:
            dropped["decided_again"] += 1
            if earlier.decided_at > item.decided_at:
                continue
        latest[item.scan] = item
    items = sorted(latest.values(), key=lambda c: c.scan)
    reasons: list[str] = []
    if check_scans:
        applicable = []
        for item in items:
            scan = export.scan(item.file)
            if scan.shape != item.shape:
                raise ExportFormatError(f"{path}: {item.file} holds a {scan.shape[0]}×{scan.shape[1]} scan but "
                                        f"{ANNOTATIONS} says {item.shape[0]}×{item.shape[1]}")
            problem = None if manifest is None else scan_problem(
                manifest, ScanFacts.of_meta(scan.meta, scan.shape), scan.high, scan.low)
            if problem:
                dropped["not_applicable"] += 1
                reasons.append(f"{item.file}: {problem}")
            else:
                applicable.append(item)
        items = applicable
    info = doc["info"] if isinstance(doc.get("info"), dict) else {}
    return Reading(path, hashlib.sha256(raw).hexdigest(), str(info.get("date_created", "")), items, dropped,
                   reasons[:20])


def split(items: list[Confirmed], val_share: float = VAL_SHARE) -> tuple[list[Confirmed], list[Confirmed]]:
    """Training and validation scans: a scan goes to validation when the first 8 hex digits of its
    sha256 fall below val_share × 16⁸, so a scan keeps its side as exports grow and across runs."""
    if not 0.0 <= val_share < 1.0:
        raise ValueError(f"validation share {val_share} must be at least 0 and below 1")
    cut = val_share * 16**8
    to_val = [int(hashlib.sha256(c.scan.encode()).hexdigest()[:8], 16) < cut for c in items]
    return [c for c, v in zip(items, to_val) if not v], [c for c, v in zip(items, to_val) if v]


@dataclass(frozen=True)
class MixPlan:
    """Fine-tuning set: the confirmed training scans plus `simulated` scans of the recipe's training block."""

    confirmed: int
    simulated: int
    share: float
    sim_seeds: range

    def to_dict(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "simulated": self.simulated, "share": self.share,
                "sim_seeds": [self.sim_seeds.start, self.sim_seeds.stop - 1] if self.simulated else []}


def plan_mix(confirmed: int, share: float = SIM_SHARE, seed: int = 1) -> MixPlan:
    """Simulated scans to add so that they make `share` of the training set (rounded up): replayed from
    the start of recipe seed `seed`'s training block, the scans the base model learnt from."""
    if not 0.0 <= share <= 0.95:
        raise ValueError(f"simulated share {share} must be 0 to 0.95 (the confirmed scans must remain in the set)")
    if confirmed < 1:
        raise ValueError("no confirmed training scans: nothing to fine-tune on")
    n = math.ceil(confirmed * share / (1 - share) - 1e-9)
    return MixPlan(confirmed, n, share, seed_ranges(seed, max(n, 1))["train"][:n])


def provenance(reading: Reading, train: list[Confirmed], val: list[Confirmed], plan: MixPlan) -> dict[str, Any]:
    """Where a candidate's confirmed data came from: the export, scans and boxes per class, negatives,
    what was left out and why, the split and the simulated share."""
    per_class: Counter[str] = Counter()
    box_class: Counter[str] = Counter()
    for item in reading.items:
        per_class.update({label for label, _ in item.boxes})
        box_class.update(label for label, _ in item.boxes)
    return {"export": str(reading.export), "annotations_sha256": reading.annotations_sha256,
            "export_created": reading.created, "stations": sorted({i.station for i in reading.items if i.station}),
            "confirmed_scans": len(reading.items), "scans_per_class": dict(sorted(per_class.items())),
            "boxes_per_class": dict(sorted(box_class.items())),
            "negatives": sum(1 for i in reading.items if not i.boxes),
            "left_out": dict(sorted(reading.dropped.items())), "not_applicable": reading.not_applicable,
            "split": {"train": len(train), "validation": len(val), "rule": "sha256 of the scan"},
            "mix": plan.to_dict()}


def write_set(out: Path, items: list[Confirmed], export: Path, classes: tuple[str, ...],
              simulated: Path | None = None) -> Path:
    """A training set in the generator's layout (out.npy N×2×H×W float16 attenuation, out.json truth):
    the confirmed scans as the station stored them, padded with air to the largest scan, then the
    simulated set's scans. Returns out.npy."""
    source = Export(export)
    sims, sim_truth = load(simulated) if simulated else (np.zeros((0, 2, 1, 1), np.float16), [])
    h = max([c.shape[0] for c in items] + [sims.shape[2] if len(sims) else 1])
    w = max([c.shape[1] for c in items] + [sims.shape[3] if len(sims) else 1])
    images = np.lib.format.open_memmap(out.with_suffix(".npy"), mode="w+", dtype=np.float16,
                                       shape=(len(items) + len(sims), 2, h, w))
    truth: list[list[dict]] = []
    for i, item in enumerate(items):
        scan = source.scan(item.file)
        images[i] = 0.0  # air
        images[i, :, :scan.shape[0], :scan.shape[1]] = np.stack([attenuation(scan.high), attenuation(scan.low)])
        truth.append([{"label": label, "box": list(b)} for label, b in item.boxes])
    for j in range(len(sims)):
        images[len(items) + j] = 0.0
        images[len(items) + j, :, :sims.shape[2], :sims.shape[3]] = sims[j]
        truth.append(sim_truth[j])
    images.flush()
    out.with_suffix(".json").write_text(json.dumps({
        "classes": list(classes), "truth": truth, "closed_loop": True,
        "sources": {"confirmed": [c.scan for c in items], "simulated": len(sims)}}))
    return out.with_suffix(".npy")


def compare(items: list[Confirmed], export: Path, packages: dict[str, Path], iou_min: float = 0.3) -> dict[str, Any]:
    """Each package on the confirmed validation scans as the station runs it (models.runtime, shipped
    thresholds): per class the confirmed boxes found (a detection of the class at IoU ≥ iou_min) and
    the negatives that raise an alarm, with 95 % Wilson intervals. Not a held-out evaluation: a few
    hundred scans of a few stations, for the canary decision beside the shadow comparison."""
    from models.evalbag.evaluate import iou, rate
    from models.runtime import load_detector

    source = Export(export)
    scans = [source.scan(c.file) for c in items]
    out: dict[str, Any] = {}
    for name, package in packages.items():
        detector = load_detector(package)
        found: Counter[str] = Counter()
        boxes: Counter[str] = Counter()
        alarms = 0
        for item, scan in zip(items, scans):
            dets = detector.detect(scan)
            alarms += not item.boxes and bool(dets)
            for label, b in item.boxes:
                boxes[label] += 1
                found[label] += any(d.label == label and iou(list(d.box), list(b)) >= iou_min for d in dets)
        out[name] = {"boxes_found": {c: rate(found[c], n) for c, n in sorted(boxes.items())},
                     "negatives_alarmed": rate(alarms, sum(1 for c in items if not c.boxes))}
    return out


def candidate_version(base: str) -> str:
    """The base version with its last number raised (2.0.0 → 2.0.1): newer than the active model for roll-out."""
    parts = base.split(".")
    if not parts[-1].isdigit():
        raise ValueError(f"base version {base!r} does not end in a number; give --version")
    return ".".join([*parts[:-1], str(int(parts[-1]) + 1)])


def write_candidate(out: Path, base: Path, model: Path, version: str, prov: dict[str, Any]) -> Path:
    """manifest.toml, MODEL.md and provenance.json of the candidate next to its model.onnx (`model`).

    The manifest is the base's with the new version and sha256 and without the base's [evaluation]
    figures (they are not the candidate's); thresholds and [applies] stay the base's."""
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if model.resolve() != (out / "model.onnx").resolve():
        (out / "model.onnx").write_bytes(data)
    manifest = load_manifest(base)
    lines, skip = [], False
    for line in (base / "manifest.toml").read_text().splitlines():
        if line.startswith("["):
            skip = line.strip().startswith("[evaluation")
        if skip:
            continue
        if line.startswith("version ="):
            line = f'version = "{version}"'
        elif line.startswith("sha256 ="):
            line = f'sha256 = "{sha}"'
        elif line.startswith("description ="):
            line = "description = " + json.dumps(
                f"{manifest.name} {manifest.version} fine-tuned on {prov['confirmed_scans']} officer-confirmed scans "
                f"(export {prov['annotations_sha256'][:12]}); candidate for canary, see MODEL.md", ensure_ascii=False)
        lines.append(line)
    text = "\n".join(lines).rstrip() + "\n"
    parse_manifest(text.encode(), out / "manifest.toml")  # refuses a manifest the station would refuse
    (out / "manifest.toml").write_text(text)
    prov = {**prov, "base": {"name": manifest.name, "version": manifest.version, "sha256": manifest.sha256},
            "candidate": {"version": version, "sha256": sha}}
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n")
    (out / "MODEL.md").write_text(card(manifest.name, version, prov, (base / "MODEL.md").read_text()))
    return out


def card(name: str, version: str, prov: dict[str, Any], base_card: str) -> str:
    """The candidate's MODEL.md: provenance first, then the base model's card one heading level down."""
    b = prov["base"]
    rows = "\n".join(f"| {c} | {n} | {prov['boxes_per_class'].get(c, 0)} |" for c, n in prov["scans_per_class"].items())
    left = ", ".join(f"{k} {v}" for k, v in prov["left_out"].items()) or "none"
    mix, run = prov["mix"], prov.get("training", {})
    return f"""# {name} {version}: candidate fine-tuned from officer-confirmed scans

**A candidate, not a release.** Fine-tuned from {name} {b['version']} (model sha256 `{b['sha256'][:12]}…`)
on scans officers confirmed at {', '.join(prov['stations']) or 'unnamed stations'}. Its thresholds and
`[applies]` are the base model's; none of the base card's figures below were measured on it. Run it as the
station's shadow model (docs/model-rollout.md: sign, stage, canary) and promote it only on what the canary
and a held-out evaluation show.

## Provenance

- Export: `{prov['export']}`, annotations.json sha256 `{prov['annotations_sha256']}`, created {prov['export_created'] or 'unknown'}.
- {prov['confirmed_scans']} confirmed scans: {prov['confirmed_scans'] - prov['negatives']} threats confirmed, negatives without boxes (false alarms): {prov['negatives']}.
- Left out: {left}.
- Split by scan (sha256): {prov['split']['train']} training, {prov['split']['validation']} validation.
- Mixed with {mix['simulated']} simulated scans ({mix['share']:.0%} of the training set), seeds {mix['sim_seeds'] or 'none'}.
- Checkpoint: sha256 `{prov.get('checkpoint_sha256', 'unknown')}`; training: {json.dumps(run) if run else 'not recorded'}.

| confirmed class | scans | boxes |
|---|---|---|
{rows or '| (none) | 0 | 0 |'}

{_validation(prov.get("validation"))}## What it has seen

Besides the simulator, only the confirmed scans above, from the scanners of those stations. Classes with few
confirmed scans move little; the validation split is too small to set thresholds.

{_demote(base_card)}"""


def _validation(v: dict[str, Any] | None) -> str:
    """The base and the candidate on the confirmed validation split, as a card section ('' without one)."""
    if not v:
        return ""

    def cell(r: dict[str, Any]) -> str:
        return f"{r['k']}/{r['n']} ({r['ci95'][0]:.2f}–{r['ci95'][1]:.2f})"

    classes = sorted({c for fig in v.values() for c in fig["boxes_found"]})
    rows = [f"| {c} boxes found | " + " | ".join(cell(fig["boxes_found"][c]) if c in fig["boxes_found"] else "–"
                                                 for fig in v.values()) + " |" for c in classes]
    rows.append("| negatives that alarm | " + " | ".join(cell(fig["negatives_alarmed"]) for fig in v.values()) + " |")
    return (f"""## On the confirmed validation split

At the shipped thresholds, as the station runs it (IoU ≥ 0.3; 95 % Wilson intervals). A few scans of a few
stations: a check that the candidate learnt what officers confirmed, not a held-out evaluation.

| | {' | '.join(v)} |
|---|{'---|' * len(v)}
""" + "\n".join(rows) + "\n\n")


def _demote(markdown: str) -> str:
    """The base card one heading level down, under a heading of its own."""
    lines = ["#" + line if line.startswith("#") else line for line in markdown.splitlines()]
    return "## The base model's card\n\n" + "\n".join(lines) + "\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_map(pairs: list[str]) -> dict[str, str]:
    """--map officer=model pairs as a dict; a pair without '=' raises ValueError naming it."""
    out = {}
    for pair in pairs:
        officer, sep, model = pair.partition("=")
        if not sep or not officer or not model:
            raise ValueError(f"--map {pair!r} must read OFFICER_CLASS=MODEL_CLASS")
        out[officer] = model
    return out


def finetune(args: argparse.Namespace, log: Any = print) -> Path:
    """The whole stage: read, split, mix, fine-tune (torch), export and write the candidate."""
    from models.training.dataset import generate
    from models.training.scene import SceneSpec

    manifest = load_manifest(args.base)
    classes = manifest.class_names
    reading = read_export(args.coco, classes, parse_map(args.map), tuple(args.negatives), manifest=manifest)
    train_items, val_items = split(reading.items, args.val_share)
    plan = plan_mix(len(train_items), args.sim_share, args.seed)
    prov = provenance(reading, train_items, val_items, plan)
    log(json.dumps(prov))
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    sim = None
    if plan.simulated:
        sim = args.work / "sim"
        if not sim.with_suffix(".json").exists():
            generate(sim, plan.sim_seeds, SceneSpec(novel=False, wide=args.domain == "wide"), workers=args.workers)
    write_set(args.work / "train", train_items, args.coco, classes, sim)
    write_set(args.work / "val", val_items, args.coco, classes)
    import torch  # the training environment only (CI has no torch)

    from models.training.train import TrainConfig, export_onnx, train

    held = torch.load(args.checkpoint, map_location="cpu")
    if int(held["model"]["cls.weight"].shape[0]) != len(classes):
        raise ValueError(f"checkpoint {args.checkpoint} has {held['model']['cls.weight'].shape[0]} classes, "
                         f"the base manifest {len(classes)}")
    cfg = TrainConfig(steps=args.steps, seed=args.seed, max_minutes=args.max_minutes, lr=args.lr, init=str(args.checkpoint),
                      device=args.device, batch=args.batch, crop=args.crop, loaders=args.loaders, ema=args.ema,
                      warmup=min(100, max(1, args.steps // 10)), threads=args.threads)
    net = train(args.work / "train", args.work, cfg, log=log)
    export_onnx(net, args.out / "model.onnx")
    # written once so that the station's loader can run the candidate on the validation split, then again
    # with the figures in its card
    out = write_candidate(args.out, args.base, args.out / "model.onnx",
                          args.version or candidate_version(manifest.version), prov)
    if val_items:
        prov["validation"] = compare(val_items, args.coco, {"base": args.base, "candidate": out})
    prov["checkpoint_sha256"] = sha256_file(args.checkpoint)
    prov["training"] = {"steps": args.steps, "lr": args.lr, "batch": args.batch, "device": args.device,
                        "max_minutes": args.max_minutes}
    return write_candidate(args.out, args.base, args.out / "model.onnx",
                           args.version or candidate_version(manifest.version), prov)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.training.recipe finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", type=Path, required=True, help="a station's export zip (GET /api/export.zip) or its folder")
    p.add_argument("--base", type=Path, default=Path("models/zoo/cpe-tiny"), help="the base model package")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the base model's training checkpoint (checkpoint.pt of its run; the zoo holds only ONNX)")
    p.add_argument("--out", type=Path, required=True, help="folder for the candidate package")
    p.add_argument("--work", type=Path, default=Path("/tmp/cpe-finetune"))
    p.add_argument("--version", default=None, help="candidate version (default: the base's last number + 1)")
    p.add_argument("--map", action="append", default=[], metavar="OFFICER=MODEL",
                   help="rename an officer's class to a model class (repeatable)")
    p.add_argument("--negatives", nargs="+", default=list(NEGATIVE_OUTCOMES),
                   help="review outcomes whose scans become negatives (false_alarm; add cleared to use cleared scans)")
    p.add_argument("--val-share", type=float, default=VAL_SHARE)
    p.add_argument("--sim-share", type=float, default=SIM_SHARE, help="share of simulated scans in the training set")
    p.add_argument("--seed", type=int, default=1, help="recipe seed whose training block the simulated scans replay")
    p.add_argument("--domain", choices=("wide", "narrow"), default="wide")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=3e-4, help="lower than training from scratch: keep what was learnt")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=448)
    p.add_argument("--loaders", type=int, default=0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        out = finetune(args)
    except (ExportFormatError, ValueError) as exc:
        raise SystemExit(f"finetune refused: {exc}") from exc
    print(f"candidate written to {out}", flush=True)


if __name__ == "__main__":
    main()
