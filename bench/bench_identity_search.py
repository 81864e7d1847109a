"""Identity search benchmark: exact and prefix search over N inspections on both hub backends.

Run:  .venv/bin/python bench/bench_identity_search.py [--records 100000] [--pg postgresql://127.0.0.1:5432/test]

Fills a fresh hub store (a temporary SQLite file; a fresh schema in the PostgreSQL database,
dropped afterwards) with N records of 3 identities each (a Hong Kong plate, a container code, a
UHF TID) plus their rows in the identity index, in the form ingest writes them, then times
(median and p95 of `--queries` searches each, newest 100 results):

    exact        one plate, through the index (central_sync.hub.search.search_clause, as the API runs it)
    prefix       a 4-character container owner-code prefix matching ~1/50 of the records, and a 6-character
                 plate prefix matching a handful, through the index
    one_char     a one-character prefix ("E") that every record's TID matches: bounded (answered newest
                 record first, the count of matches stopping at BROAD_ROWS + 1), and for comparison the
                 unbounded way that collects every match first (`..._collect_all`)
    like_scan    the previous way, `identities LIKE '%q%'` on the records table (a full scan), for comparison

Prints figures and writes bench/results/identity_search.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central_sync.hub.search import BROAD_ROWS, identity_clause, normalise, search_clause  # noqa: E402
from central_sync.hub.store import RECORD_COLS, HubStore, open_store  # noqa: E402

OWNERS = [f"{a}{b}{c}U" for a, b, c in zip("ABCDEFGHIJKLMNOPQRSTUVWXY" * 2, "MSCTOGHEQWRTYUIPLKJHGFDSAZ" * 2,
                                           "SUKOQWEHGTRAUIOPLKJHGFDSAZ" * 2)][:50]


def identities(i: int) -> list[tuple[str, str]]:
    return [("plate", f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}{i % 10000:04d}"),
            ("container", f"{OWNERS[i % 50]}{i:06d}{i % 10}"), ("rfid_tid", f"E28011602000{i:012X}")]


def fill(store: HubStore, n: int) -> None:
    rows, idents = [], []
    t0 = 1_767_225_600.0
    for i in range(n):
        rid = f"{i:012d}-{uuid.uuid4().hex[:6]}"
        ids = identities(i)
        body = json.dumps({"id": rid, "identities": [{"kind": k, "value": v} for k, v in ids]})
        rows.append((rid, "st-1", i, "clear", int(i % 20 == 0), "vehicle", "1", t0 + i, " ".join(v for _, v in ids), None,
                     body, t0 + i, "hub", i, None))
        idents += [(rid, "st-1", k, v, normalise(v), t0 + i) for k, v in ids]

    def write(cur: object) -> None:
        for start in range(0, n, 5000):
            cur.executemany(store.sql(f"INSERT INTO records ({','.join(RECORD_COLS)}) VALUES "  # type: ignore[attr-defined]
                                      f"({','.join('?' * len(RECORD_COLS))})"), rows[start:start + 5000])
        for start in range(0, len(idents), 15000):
            cur.executemany(store.sql("INSERT INTO record_identities (record_id, station, kind, value, norm, "  # type: ignore[attr-defined]
                                      "decided_ts) VALUES (?,?,?,?,?,?)"), idents[start:start + 15000])
    store.run_in_transaction(write)
    store.run_in_transaction(lambda cur: cur.execute("ANALYZE"))


def timed(fn: Callable[[], int], queries: int) -> dict[str, float]:
    fn()  # warm the cache
    times, hits = [], 0
    for _ in range(queries):
        t0 = time.perf_counter()
        hits = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
            "results": hits}


def searches(store: HubStore, n: int, queries: int, rnd: random.Random) -> dict[str, dict[str, float]]:
    def search(q: str, match: str) -> int:
        where, args = search_clause(store, q, None, match)  # type: ignore[arg-type]
        return len(store.records(f"WHERE {where}", args, 100, 0))

    def collect_all(q: str) -> int:
        where, args = identity_clause(q, None, "prefix", broad=False)
        return len(store.records(f"WHERE {where}", args, 100, 0))

    def like(q: str) -> int:
        return len(store.records("WHERE identities LIKE ?", (f"%{q}%",), 100, 0))

    i = rnd.randrange(n)
    plate, container = identities(i)[0][1], identities(i)[1][1]
    return {"exact": timed(lambda: search(plate, "exact"), queries),
            "prefix_owner_code": timed(lambda: search(container[:4], "prefix"), queries),
            "prefix_plate": timed(lambda: search(plate[:6], "prefix"), queries),
            "prefix_one_char": timed(lambda: search("E", "prefix"), queries),
            "prefix_one_char_collect_all": timed(lambda: collect_all("E"), max(3, queries // 10)),
            "like_scan_plate": timed(lambda: like(plate), max(3, queries // 10))}


def run(url: str, n: int, queries: int) -> dict[str, object]:
    store = open_store(url)
    store.migrate()
    t0 = time.perf_counter()
    fill(store, n)
    fill_s = time.perf_counter() - t0
    out: dict[str, object] = {"fill_s": round(fill_s, 1), **searches(store, n, queries, random.Random(7))}
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    args = ap.parse_args()
    results: dict[str, object] = {"records": args.records, "broad_rows": BROAD_ROWS, "machine": platform.machine(),
                                  "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(str(Path(tmp) / "hub.db"), args.records, args.queries)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                results["postgresql"] = run(f"{args.pg}?options=-csearch_path%3D{schema}", args.records, args.queries)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    except psycopg.OperationalError as exc:
        results["postgresql"] = f"unreachable: {exc}"
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results" / "identity_search.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
