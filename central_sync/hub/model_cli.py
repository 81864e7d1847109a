"""`edge-hub model`: signed model packages and their roll-out (central_sync.model_delivery) from the command line.

    edge-hub model keygen --out KEY --pub PUB                   the model-signing key pair (one key per role)
    edge-hub model upload DIR                                   copy a package in (manifest.toml, model.onnx, MODEL.md)
    edge-hub model sign PACKAGE --key KEY --key-id ID [--allow-downgrade] [--by NAME]
    edge-hub model rollout PACKAGE (--station S ... | --percent P | --all) [--min-items N] [--agreement X]
                                   [--p95-ms MS] [--max-misses M] [--max-items N] [--by NAME]
    edge-hub model status                                       packages, roll-outs and every station's models

`--dir` (default $EDGE_HUB_MODELS) is the folder `edge-hub run --models-dir` delivers from; `--db` the hub
database (the stations known, and their reported models).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pydantic import ValidationError

from central_sync.commands import generate_keypair, load_private_key
from central_sync.hub.stations import station_view
from central_sync.hub.store import open_store
from central_sync.model_delivery import Criteria, ModelRepo, RolloutError, Target

DEFAULT_DIR = Path(os.environ.get("EDGE_HUB_MODELS", "/var/lib/checkpoint-hub/models"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="signed model packages and their roll-out with canary (docs/model-rollout.md)")
    model.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the hub's package folder (default $EDGE_HUB_MODELS)")
    model.add_argument("--db", help="the hub database: sqlite path or postgresql://... (default $EDGE_HUB_DB, else "
                                    "hub.sqlite3)")
    act = model.add_subparsers(dest="model_cmd", required=True)
    keygen = act.add_parser("keygen", help="make the model-signing key pair (never the risk or command key)")
    keygen.add_argument("--out", type=Path, required=True, help="private key (PEM, 0600): keep it with the admin")
    keygen.add_argument("--pub", type=Path, required=True, help="public key (PEM): pinned by every station")
    upload = act.add_parser("upload", help="copy a package in after checking its manifest and the model's sha256")
    upload.add_argument("src", type=Path)
    sign = act.add_parser("sign", help="an admin signs the package's manifest and files (Ed25519)")
    sign.add_argument("package", help="NAME-VERSION as `upload` printed it")
    sign.add_argument("--key", type=Path, required=True, help="the model-signing private key (PEM)")
    sign.add_argument("--key-id", required=True, help="the id stations pin the key under ([rollout] keys)")
    sign.add_argument("--allow-downgrade", action="store_true", help="stations may install it over a newer model")
    sign.add_argument("--by", default=os.environ.get("USER", "admin"), help="who signs (recorded in the statement)")
    roll = act.add_parser("rollout", help="stage a roll-out of a signed package; the running hub delivers it")
    roll.add_argument("package")
    who = roll.add_mutually_exclusive_group(required=True)
    who.add_argument("--station", action="append", help="a station id (repeat for more)")
    who.add_argument("--percent", type=float, help="this share of the stations the hub knows (stable choice)")
    who.add_argument("--all", action="store_true", help="every station that takes model packages")
    roll.add_argument("--min-items", type=int, default=Criteria().min_items)
    roll.add_argument("--agreement", type=float, default=Criteria().min_agreement, help="0..1")
    roll.add_argument("--p95-ms", type=float, default=Criteria().p95_ms)
    roll.add_argument("--max-misses", type=int, default=Criteria().max_misses)
    roll.add_argument("--max-items", type=int)
    roll.add_argument("--by", default=os.environ.get("USER", "admin"))
    act.add_parser("status", help="packages, roll-outs and every station's active and candidate model")


def run(args: argparse.Namespace) -> str:
    """The command's output; SyncError (RolloutError, CommandError) with one sentence otherwise."""
    if args.model_cmd == "keygen":
        generate_keypair(args.out, args.pub)
        return f"model-signing key written to {args.out} (0600); stations pin {args.pub} under [rollout] keys"
    repo = ModelRepo(args.dir)
    if args.model_cmd == "upload":
        return f"uploaded {repo.upload(args.src)}"
    if args.model_cmd == "sign":
        doc = repo.sign(args.package, load_private_key(args.key), args.key_id, allow_downgrade=args.allow_downgrade,
                        signer=args.by)
        return f"signed {args.package} with key {doc['key_id']} (allow_downgrade={doc['statement']['allow_downgrade']})"
    if args.model_cmd == "rollout":
        try:
            target = Target(stations=tuple(args.station) if args.station else None, percent=args.percent)
            criteria = Criteria(min_items=args.min_items, min_agreement=args.agreement, p95_ms=args.p95_ms,
                                max_misses=args.max_misses, max_items=args.max_items)
        except ValidationError as exc:  # was a pydantic traceback
            raise RolloutError(_option_problem(exc)) from exc
        record = repo.stage(args.package, target, criteria, _known(args) if args.percent else (), staged_by=args.by)
        chosen = ", ".join(record.stations) if record.stations is not None else "all stations"
        return f"roll-out {record.id}: {record.package} to {chosen}"
    return json.dumps({"packages": repo.packages(), "rollouts": [r.model_dump(mode="json") for r in repo.rollouts()],
                       "stations": fleet(args)}, indent=2)


OPTIONS = {"min_items": "--min-items", "min_agreement": "--agreement", "p95_ms": "--p95-ms",
           "max_misses": "--max-misses", "max_items": "--max-items", "percent": "--percent"}


def _option_problem(exc: ValidationError) -> str:
    """One sentence naming the option of the first value refused, e.g. '--agreement 2.0: ... less than or equal to 1'."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    return (f"{OPTIONS.get(field, field)} {first.get('input')!r}: {first['msg'].lower()}; nothing staged")


def _db(args: argparse.Namespace) -> str:
    return str(args.db or os.environ.get("EDGE_HUB_DB") or "hub.sqlite3")


def _known(args: argparse.Namespace) -> list[str]:
    store = open_store(_db(args))
    try:
        return store.station_ids()
    finally:
        store.close()


def fleet(args: argparse.Namespace) -> list[dict]:
    store = open_store(_db(args))
    try:
        return [{"station": v["station"], "state": v["state"], "models": v["models"]}
                for v in map(station_view, store.stations())]
    finally:
        store.close()
