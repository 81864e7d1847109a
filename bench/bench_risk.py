"""Risk assessment benchmark: a 1 M-entry signed bundle with 500 rules, applied and evaluated on one core.

Run:  .venv/bin/python bench/bench_risk.py [--entries 1000000] [--rules 500] [--items 20000]

The parent builds a realistic bundle (plates, container codes, UHF TIDs, seals, traders, routes on 60
lists, some with validity periods; 500 rules over declarations, history, time, station and detector;
20,000 declarations), signs it (Ed25519) and writes the envelope to a temporary file. A fresh child
process then measures what a station does: its resident memory before, open_bundle (verify, inflate,
parse) and BundleState.apply (index) timed separately, its memory after (the bundle object dropped,
the state kept), and evaluation of `--items` items (identities from the lists at a ~3 % hit rate,
half with a declaration, detector outcomes mixed), p50/p99/max per item in wall-clock time and in the
thread's CPU time (on a shared machine the wall clock also counts the time other processes hold the
core). Then it times a 1 % delta, and how long a thread ticking every millisecond (the station's event loop)
was held up at most while the snapshot was opened and applied again in a worker thread, next to the
same ticker's worst wait without that work.

Prints figures and writes bench/results/risk.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from risk.bundle import (Declaration, RandomPolicy, WatchEntry, bundle_dict, diff_entries,  # noqa: E402
                         encode_bundle, open_bundle)
from risk.engine import BundleState, Engine, Facts  # noqa: E402
from risk.rules import Rule  # noqa: E402

T0 = 1_767_225_600.0  # 2026-01-01 UTC
SHARES = {"plate": 0.40, "container": 0.40, "rfid_tid": 0.15, "seal": 0.03, "trader": 0.015, "route": 0.005}
OWNERS = [f"{a}{b}{c}U" for a, b, c in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "MSCTOGHEQWRTYUIPLKJHGFDSAZ",
                                           "SUKOQWEHGTRAUIOPLKJHGFDSAZ")]
HS = ["2402", "2403", "8703", "8471", "3004", "9302", "9303", "7113", "6403", "8517", "2208", "0302"]
DECLARED = 20_000_000  # declared containers are numbered from here (none of them on a list)
COUNTRIES = ["CN", "HK", "MO", "VN", "TH", "MY", "SG", "AE", "NG", "CO", "TR", "IN"]


def value(kind: str, i: int) -> str:
    """The i-th value of a kind (distinct per i), in the written form the station reads."""
    if kind == "plate":
        return f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)} {i // 676 % 10000:04d}{'' if i < 6_760_000 else i}"
    if kind == "container":
        return f"{OWNERS[i % 26]} {i // 26:06d} {i % 10}"
    if kind == "rfid_tid":
        return f"E2801160{i:016X}"
    if kind == "seal":
        return f"HKSEAL{i:08d}"
    if kind == "trader":
        return f"CN{i:010d}"
    return f"{COUNTRIES[i % 12]}-{COUNTRIES[i // 12 % 12]}-{i}"


def entries(n: int, rng: random.Random) -> list[WatchEntry]:
    out: list[WatchEntry] = []
    for kind, share in SHARES.items():
        for i in range(int(n * share)):
            lst = rng.randrange(60)
            vfrom, vto = (T0 - 86400 * 30, T0 + 86400 * rng.randrange(1, 90)) if lst % 5 == 0 else (None, None)
            out.append(WatchEntry(kind, value(kind, i), f"L{lst:02d}", f"watch.reason.{lst % 12}", f"unit-{lst % 7}",
                                  vfrom, vto, lst % 4, "amber" if lst % 3 == 0 else "red", 50 + lst))
    return out


def rules(n: int, rng: random.Random) -> list[Rule]:
    """`n` rules of the shapes risk officers write (one to four conditions, some nested)."""
    selective = [  # what a rule is about: one of these comes first
        lambda: {"fact": "declaration.trader", "op": "eq", "value": value("trader", rng.randrange(200_000))},
        lambda: {"fact": "declaration.hs", "op": "prefix", "value": rng.choice(HS) + f"{rng.randrange(100):02d}"},
        lambda: {"fact": "history.seizures", "op": "gte", "value": rng.randrange(2, 4)},
        lambda: {"fact": "detector.labels", "op": "eq", "value": rng.choice(["knife", "gun", "cigarettes"])},
        lambda: {"listed": rng.choice(["plate", "container", "any"])},
        lambda: {"fact": "identity.plate", "op": "prefix", "value": f"{chr(65 + rng.randrange(26))}Z"},
    ]
    narrowing = [
        lambda: {"fact": "declaration.origin", "op": "in", "value": rng.sample(COUNTRIES, 3)},
        lambda: {"fact": "declaration.weight_kg", "op": "between", "value": sorted(rng.sample(range(1000, 30000), 2))},
        lambda: {"fact": "time.hour", "op": "between", "value": sorted(rng.sample(range(24), 2))},
        lambda: {"fact": "station.kind", "op": "eq", "value": rng.choice(["gantry", "conveyor"])},
        lambda: {"fact": "declaration.present", "op": "eq", "value": False},
        lambda: {"not": {"fact": "detector.verdict", "op": "eq", "value": "clear"}},
    ]
    out = []
    for r in range(n):
        conds = [rng.choice(selective)()] + [rng.choice(narrowing)() for _ in range(rng.randrange(0, 3))]
        other = {"all": [rng.choice(selective)(), rng.choice(narrowing)()]}
        when: dict[str, Any] = {"all": conds} if r % 4 else {"any": [{"all": conds}, other]}
        out.append(Rule(f"R{r:03d}", f"rule {r}", f"rule.reason.{r % 20}", when, rng.randrange(5, 60),
                        rng.choice(["red", "amber", "amber", "green"])))
    return out


def declarations(n: int, rng: random.Random) -> list[Declaration]:
    return [Declaration(f"D{i:08d}", value("trader", rng.randrange(200_000)),
                        container=value("container", DECLARED + i * 7),
                        goods=tuple((f"{rng.choice(HS)}{rng.randrange(10000):04d}", "goods") for _ in range(2)),
                        declared_empty=i % 50 == 0, weight_kg=float(rng.randrange(500, 30000)),
                        origin=rng.choice(COUNTRIES), sealed=i % 3 == 0) for i in range(n)]


def items(n: int, n_entries: int, n_decl: int, rng: random.Random) -> list[Facts]:
    """Items at a realistic hit rate: ~3 % carry a listed plate or container; half have a declaration."""
    out = []
    for k in range(n):
        hit = rng.random() < 0.03
        idx = rng.randrange(int(n_entries * 0.4)) if hit else int(n_entries * 0.4) + rng.randrange(10**7)
        decl = rng.random() < 0.5
        ids = (("plate", value("plate", idx)),
               ("container", value("container", DECLARED + rng.randrange(n_decl) * 7 if decl else 10**7 + k)),
               ("rfid_tid", value("rfid_tid", 10**8 + k)))
        out.append(Facts(f"item-{k:06d}", T0 + 3600 * rng.random() * 24, ids, "gantry-1", "gantry",
                         history_passes=rng.randrange(50), history_seizures=rng.choice([0] * 30 + [1, 2]),
                         detector_verdict=rng.choice(["clear", "clear", "suspect", "pending"]),
                         detector_labels=("knife",) if rng.random() < 0.02 else (),
                         load_present=rng.choice([True, False, None])))
    return out


def peak_rss_mb() -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def longest_pause(work: Callable[[], object]) -> tuple[float, float]:
    """The longest a thread sleeping 1 ms at a time waited (ms) while `work` ran in a worker thread, and the
    same without the work (the machine's own jitter): how long the apply can hold up a station's event loop."""
    def ticker(stop: threading.Event) -> float:
        worst = 0.0
        while not stop.is_set():
            s = time.perf_counter()
            time.sleep(0.001)
            worst = max(worst, time.perf_counter() - s - 0.001)
        return worst * 1000
    done = threading.Event()
    def run() -> None:
        work()
        done.set()
    worker = threading.Thread(target=run)
    t0 = time.perf_counter()
    worker.start()
    busy = ticker(done)
    worker.join()
    idle_until = threading.Event()
    threading.Timer(time.perf_counter() - t0, idle_until.set).start()
    return busy, ticker(idle_until)


def child(path: str, pub: bytes, n_entries: int, n_items: int, n_decl: int, delta_path: str) -> dict[str, Any]:
    """What a station does with the envelope: open, apply, evaluate (one process, one core)."""
    keys = {"bench": Ed25519PublicKey.from_public_bytes(pub)}
    data = Path(path).read_bytes()
    test_items = items(n_items, n_entries, n_decl, random.Random(7))
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    bundle = open_bundle(data, keys, now=T0, current=None)
    t1 = time.perf_counter()
    state = BundleState.empty().apply(bundle)
    t2 = time.perf_counter()
    del bundle, data
    gc.collect()
    rss1, peak = rss_mb(), peak_rss_mb()
    engine = Engine(state, seed="bench")
    for f in test_items[:500]:
        engine.evaluate(f)  # warm up
    times, cpu, lanes, hits = [], [], {"red": 0, "amber": 0, "green": 0}, 0
    for f in test_items:
        s, c = time.perf_counter(), time.thread_time()
        a = engine.evaluate(f)
        cpu.append((time.thread_time() - c) * 1000)
        times.append((time.perf_counter() - s) * 1000)
        lanes[a.lane] += 1
        hits += any(x.kind == "watchlist" for x in a.fired)
    times.sort()
    cpu.sort()
    delta = Path(delta_path).read_bytes()
    d0 = time.perf_counter()
    new_state = state.apply(open_bundle(delta, keys, now=T0, current=state.version))
    d1 = time.perf_counter()
    del new_state
    gc.collect()
    again = Path(path).read_bytes()
    pause, jitter = longest_pause(lambda: BundleState.empty().apply(open_bundle(again, keys, now=T0, current=None)))
    return {"open_s": round(t1 - t0, 3), "apply_s": round(t2 - t1, 3), "open_apply_s": round(t2 - t0, 3),
            "rss_before_mb": round(rss0, 1), "rss_after_mb": round(rss1, 1), "rss_delta_mb": round(rss1 - rss0, 1),
            "rss_peak_during_apply_mb": round(peak, 1),
            "index_mb": round(sum(i.nbytes for i in state.lists.values()) / 2**20, 1),
            "entries_indexed": state.entries, "rules_compiled": len(state.rules.rules),
            "eval_items": len(times), "eval_p50_ms": round(statistics.median(times), 4),
            "eval_p99_ms": round(times[int(0.99 * (len(times) - 1))], 4), "eval_max_ms": round(times[-1], 4),
            "eval_cpu_p50_ms": round(statistics.median(cpu), 4),
            "eval_cpu_p99_ms": round(cpu[int(0.99 * (len(cpu) - 1))], 4), "eval_cpu_max_ms": round(cpu[-1], 4),
            "lanes": lanes, "watchlist_hit_rate": round(hits / len(times), 4),
            "delta_open_apply_s": round(d1 - d0, 3),
            "apply_in_thread_longest_pause_ms": round(pause, 1), "no_apply_longest_pause_ms": round(jitter, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--declarations", type=int, default=20_000)
    ap.add_argument("--child", nargs=4, metavar=("ENVELOPE", "PUBHEX", "DELTA", "ENTRIES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, pub, delta, n = args.child
        print(json.dumps(child(path, bytes.fromhex(pub), int(n), args.items, args.declarations, delta)))
        return
    rng = random.Random(18)
    key = Ed25519PrivateKey.generate()
    ents, rule_list, decls = entries(args.entries, rng), rules(args.rules, rng), declarations(args.declarations, rng)
    policy = RandomPolicy(rate=0.02, stale_rate=0.1)
    t0 = time.perf_counter()
    doc = bundle_dict(version=2, issued_at=T0 - 60, expires_at=T0 + 7 * 86400, entries=ents, rules=rule_list,
                      random=policy, declarations=decls)
    t1 = time.perf_counter()
    envelope = encode_bundle(doc, key, "bench")
    t2 = time.perf_counter()
    changed = [replace(e, value=e.value + "X") if i % 100 == 0 else e for i, e in enumerate(ents)]
    added, removed = diff_entries(ents, changed)  # 1 % of the values changed: removed, and added again
    delta = encode_bundle(bundle_dict(version=3, kind="delta", base_version=2, issued_at=T0, expires_at=T0 + 86400,
                                      entries=added, removed=removed, rules_changed=False, random=policy), key, "bench")
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "b").write_bytes(envelope)
        (Path(tmp) / "d").write_bytes(delta)
        out = subprocess.run([sys.executable, __file__, "--items", str(args.items), "--declarations",
                              str(args.declarations), "--child", str(Path(tmp) / "b"),
                              pub, str(Path(tmp) / "d"), str(args.entries)], check=True, capture_output=True,
                             text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    station = json.loads(out.stdout)
    result = {"entries": len(ents), "rules": len(rule_list), "declarations": len(decls),
              "hub_bundle_dict_s": round(t1 - t0, 3), "hub_encode_sign_s": round(t2 - t1, 3),
              "bundle_bytes": len(envelope), "delta_entries_added": len(added), "delta_removed": len(removed),
              "delta_bytes": len(delta), **station,
              "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)}}
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "risk.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
