"""manifest.toml, evaluation.json and the model card MODEL.md of the gantry package cpe-gantry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from models.training.card import training_line
from models.training.evaluate import training_history
from models.training.portal.generator import CLASSES

NAME, VERSION = "cpe-gantry", "1.0.0"
DESCRIPTION = ("Anchor-free dual-energy detector for drive-through portal scans of vehicles and containers "
               "(stride 8), trained on simulated portal scans only on a CPU; see MODEL.md")
APPLIES = {"item_kinds": '["vehicle", "container"]', "pixel_mm": "[5.0, 10.0]", "energy_kev": "[250.0, 9500.0]",
           "lines": "[400, 8000]", "pixels": "[256, 1400]"}
GOALS = (("heldout_A", "ap50", "mean", 0.85, "≥"),
         ("heldout_A", "vehicles_cig_ge_case_or_drugs_ge_1kg_found", "rate", 0.95, "≥"),
         ("heldout_A", "clean_vehicles_alarming", "rate", 0.02, "≤"),
         ("generator_B", "vehicles_cig_ge_case_or_drugs_ge_1kg_found", "rate", 0.95, "≥"),
         ("generator_B", "clean_vehicles_alarming", "rate", 0.02, "≤"),
         ("heldout_A", "declared_empty_ge_50kg_flagged", "rate", 0.99, "≥"),
         ("heldout_A", "declared_empty_unloaded_flagged", "rate", 0.01, "≤"),
         ("generator_B", "declared_empty_ge_50kg_flagged", "rate", 0.99, "≥"),
         ("generator_B", "declared_empty_unloaded_flagged", "rate", 0.01, "≤"))


def write_manifest(package: Path, thresholds: dict[str, float], summary: dict[str, Any] | None = None,
                   clears: bool = False) -> Path:
    """manifest.toml as the runtime reads it (classes in the contract order, [applies]).

    `clears`: whether finding nothing may clear a vehicle; only a model that met every goal on both
    generators (goals_met) may, so a package not yet evaluated never does.
    """
    sha = hashlib.sha256((package / "model.onnx").read_bytes()).hexdigest()
    trust = [] if clears else ["# Below its goals (MODEL.md): what it finds marks a vehicle suspect, but finding nothing never",
                               "# clears one; an officer looks at every vehicle it has not flagged (reason model_cannot_clear)."]
    lines = [f'name = "{NAME}"', f'version = "{VERSION}"', f'sha256 = "{sha}"', *trust,
             f"clears = {str(clears).lower()}", f'description = "{DESCRIPTION}"', "",
             "[input]", 'channels = ["high", "low"]', "size = [640, 640]", 'normalisation = "attenuation"',
             "pixel_mm = 7.5", "", "[output]", 'format = "cpe-fcos-v1"', "stride = 8", ""]
    for name in CLASSES:
        lines += ["[[classes]]", f'name = "{name}"', f"threshold = {thresholds[name]}", ""]
    lines += ["[applies]", *(f"{k} = {v}" for k, v in APPLIES.items()), ""]
    if summary:
        lines.append("[evaluation]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in summary.items()]
        lines.append("")
    path = package / "manifest.toml"
    path.write_text("\n".join(lines))
    return path


def _get(figures: dict, block: str, key: str, field: str) -> float | None:
    value = figures.get(block, {}).get(key, {})
    return value.get(field) if isinstance(value, dict) else None


def _cell(f: dict | None) -> str:
    if not f or f.get("n", 0) == 0:
        return "n/a (no such scans)"
    return f"{f['rate']:.3f} ({f['k']}/{f['n']}; 95 % CI {f['ci95'][0]:.3f}–{f['ci95'][1]:.3f})"


def _met(got: float | None, target: float, op: str) -> bool | None:
    return None if got is None else (got >= target if op == "≥" else got <= target)


def goals_met(figures: dict) -> bool:
    """Every goal measured and met (an unmeasured goal is not met)."""
    return all(_met(_get(figures, block, key, field), target, op) for block, key, field, target, op in GOALS)


def goals_table(figures: dict) -> str:
    rows = ["| goal | block | target | measured | met |", "|---|---|---|---|---|"]
    for block, key, field, target, op in GOALS:
        got = _get(figures, block, key, field)
        met = _met(got, target, op)
        ok = "n/a" if met is None else ("yes" if met else "no")
        shown = f"{got:.3f}" if isinstance(got, float) else "n/a"
        rows.append(f"| {key.replace('_', ' ')} ({field}) | {block} | {op} {target} | {shown} | {ok} |")
    return "\n".join(rows)


def block_table(figures: dict, names: list[str]) -> str:
    keys = ["vehicles_cig_ge_case_or_drugs_ge_1kg_found", "clean_vehicles_alarming", "cigarettes_objects_found",
            "drugs_objects_found", "firearm_objects_found", "concealment_objects_found",
            "declared_empty_ge_50kg_flagged", "declared_empty_unloaded_flagged"]
    rows = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows.append("| scans | " + " | ".join(str(figures[n]["scans"]) for n in names) + " |")
    rows.append("| AP@0.5 mean (per class below) | " + " | ".join(f"{figures[n]['ap50'].get('mean', 0):.3f}"
                                                              for n in names) + " |")
    for c in CLASSES:
        rows.append(f"| AP@0.5 {c} | " + " | ".join(str(figures[n]["ap50"].get(c, "n/a")) for n in names) + " |")
    for k in keys:
        rows.append(f"| {k.replace('_', ' ')} | " + " | ".join(_cell(figures[n].get(k)) for n in names) + " |")
    return "\n".join(rows)


def write_card(package: Path, work: Path, thresholds: dict[str, float], figures: dict, blocks: dict) -> Path:
    """evaluation.json, the manifest with its summary, and MODEL.md."""
    model = package / "model.onnx"
    history = training_history(work)
    doc = {"thresholds": thresholds, "figures": figures, "training": history,
           "train_steps": sum(r["steps"] for r in history), "model_bytes": model.stat().st_size,
           "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
           "blocks": {n: {"generator": b.generator, "seeds": [b.seeds.start, b.seeds.stop - 1],
                          "options": {k: v for k, v in b.options}} for n, b in blocks.items()}}
    (package / "evaluation.json").write_text(json.dumps(doc, indent=1, default=list))
    summary = {"heldout_A_map50": _get(figures, "heldout_A", "ap50", "mean"),
               "generator_B_map50": _get(figures, "generator_B", "ap50", "mean"),
               "heldout_A_found": _get(figures, "heldout_A", "vehicles_cig_ge_case_or_drugs_ge_1kg_found", "rate"),
               "generator_B_found": _get(figures, "generator_B", "vehicles_cig_ge_case_or_drugs_ge_1kg_found", "rate"),
               "heldout_A_clean_alarm": _get(figures, "heldout_A", "clean_vehicles_alarming", "rate"),
               "generator_B_clean_alarm": _get(figures, "generator_B", "clean_vehicles_alarming", "rate"),
               "train_steps": doc["train_steps"], "details": "evaluation.json, MODEL.md"}
    write_manifest(package, thresholds, {k: v for k, v in summary.items() if v is not None}, goals_met(figures))
    template = (Path(__file__).parent / "MODEL_TEMPLATE.md").read_text()
    text = template.format(version=VERSION, sha=doc["sha256"], mb=doc["model_bytes"] / 1e6,
                           steps=doc["train_steps"], training=training_line({"training": history}),
                           thresholds=", ".join(f"{k} {v}" for k, v in thresholds.items()),
                           goals=goals_table(figures),
                           table=block_table(figures, ["validation_A", "heldout_A", "generator_B"]),
                           blocks="\n".join(f"- `{n}`: generator {b.generator}, seeds {b.seeds.start}–"
                                            f"{b.seeds.stop - 1}, options {dict(b.options)}" for n, b in blocks.items()))
    path = package / "MODEL.md"
    path.write_text(text)
    return path
