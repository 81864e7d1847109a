"""A simulated customs declaration system: realistic pre-arrival declarations, reproducible by seed.

    python -m central_sync.riskhub.declgen --count 50 --seed 1 --format csv > declarations.csv

Containers carry valid ISO 6346 check digits, plates follow a few regional patterns, goods are real
HS headings with their descriptions; a share are declared empty (and then carry no goods).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import string
import sys

from central_sync.riskhub.declarations import CSV_COLUMNS, DeclarationIn, Goods
from models.ocr.iso6346 import check_digit

HS = (("8471.30", "Portable automatic data-processing machines"), ("6403.99", "Footwear with leather uppers"),
      ("0901.21", "Coffee, roasted, not decaffeinated"), ("8517.13", "Smartphones"), ("6109.10", "T-shirts of cotton"),
      ("9403.60", "Wooden furniture"), ("2204.21", "Wine of fresh grapes, in containers of 2 l or less"),
      ("8703.80", "Vehicles with only electric motor for propulsion"), ("3004.90", "Medicaments, packaged for retail"),
      ("2402.20", "Cigarettes containing tobacco"), ("7113.19", "Jewellery of precious metal"),
      ("8708.99", "Parts and accessories of motor vehicles"), ("3926.90", "Other articles of plastics"),
      ("1006.30", "Semi-milled or wholly milled rice"), ("4011.10", "New pneumatic tyres for motor cars"))
TRADERS = ("Harbour Freight Ltd", "Pearl River Logistics", "Kowloon Trading Co", "Golden Bay Imports",
           "Silk Road Forwarding", "Eastern Star Electronics", "Victoria Textiles", "Lantau Food Supply",
           "Jade Dragon Holdings", "Tsing Yi Auto Parts")
ORIGINS = ("CN", "VN", "TH", "MY", "DE", "US", "JP", "KR", "IN", "AE")
OWNERS = ("MSCU", "MAEU", "CSQU", "OOLU", "HLXU", "TGHU", "CMAU", "EGHU")


def container(rng: random.Random) -> str:
    first10 = rng.choice(OWNERS) + "".join(rng.choices(string.digits, k=6))
    return first10 + str(check_digit(first10))


def plate(rng: random.Random) -> str:
    pattern = rng.choice(("LL dddd", "LLdddd", "粤Z·dddd港"))
    return "".join(rng.choice(string.ascii_uppercase) if c == "L" else rng.choice(string.digits) if c == "d" else c
                   for c in pattern)


def declaration(rng: random.Random, n: int) -> DeclarationIn:
    empty = rng.random() < 0.15
    goods = () if empty else tuple(Goods(hs=hs, description=d) for hs, d in rng.sample(HS, rng.randint(1, 3)))
    boxed = rng.random() < 0.8
    sealed = boxed and rng.random() < 0.7
    return DeclarationIn(
        ref=f"DEC{2026_000000 + n}", container=container(rng) if boxed else None,
        plate=plate(rng) if not boxed or rng.random() < 0.5 else None, trader=rng.choice(TRADERS), goods=goods,
        declared_empty=empty, weight_kg=round(rng.uniform(2200, 3900) if empty else rng.uniform(4000, 28000), 1),
        origin=rng.choice(ORIGINS), sealed=sealed, seal_id=f"ES{rng.randint(10**7, 10**8 - 1)}" if sealed else None)


def generate(count: int, seed: int = 0) -> list[DeclarationIn]:
    rng = random.Random(seed)
    return [declaration(rng, n) for n in range(count)]


def to_csv(decls: list[DeclarationIn]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for d in decls:
        w.writerow([d.ref, d.container or "", d.plate or "", d.trader, ";".join(f"{g.hs}:{g.description}" for g in d.goods),
                    str(d.declared_empty).lower(), "" if d.weight_kg is None else d.weight_kg, d.origin,
                    str(d.sealed).lower(), d.seal_id or ""])
    return out.getvalue()


def to_json(decls: list[DeclarationIn]) -> str:
    return json.dumps([d.model_dump(mode="json") for d in decls], ensure_ascii=False, indent=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="declgen", description="simulated pre-arrival declarations")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=("csv", "json"), default="csv")
    args = ap.parse_args(argv)
    decls = generate(args.count, args.seed)
    sys.stdout.write(to_csv(decls) if args.format == "csv" else to_json(decls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
