"""Hub-side risk publishing benchmark: how long the hub takes to publish a 1 M-entry bundle.

Run:  .venv/bin/python bench/bench_risk_publish.py [--entries 1000000] [--rules 500] [--pg postgresql://127.0.0.1:5432/test]

Fills the approved state of a fresh hub database (SQLite in a temporary directory, or a fresh schema
in PostgreSQL) in bulk with SQL: `--entries` watchlist entries on 60 lists of the six kinds, `--rules`
rules, 5,000 declarations. (Authoring goes through four eyes one draft per entry; this measures
publishing only.) Then times `publish()` for version 1 (read the state, build, sign, open again with
the hub's key, store) and, after 1 % of the entries changed, version 2 (snapshot and delta), and
reports the sizes. The changes are approved drafts, as authoring writes them: the delta is built from
that change log. Its part of the issue's "delivered and applied within 30 s" goal; the station's
part is bench/bench_risk.py. Prints figures and writes bench/results/risk_publish.json. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from central_sync import commands  # noqa: E402
from central_sync.control_room import db  # noqa: E402
from central_sync.hub.store import Cursor, HubStore, open_store  # noqa: E402
from central_sync.riskhub import declarations, declgen, publish, tables  # noqa: E402
from central_sync.riskhub.publish import RiskKey  # noqa: E402
from risk.rules import Rule  # noqa: E402

T = TypeVar("T")
KINDS = ("plate", "container", "rfid_tid", "seal", "trader", "route")


def value(kind: str, rng: random.Random) -> str:
    if kind == "container":
        return "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=3)) + "U" + "".join(rng.choices("0123456789", k=7))
    if kind == "rfid_tid":
        return "E280" + "".join(rng.choices("0123456789ABCDEF", k=20))
    if kind == "route":
        return rng.choice(("CN", "VN", "TH", "MY")) + "-" + rng.choice(("HK", "MO", "SZ")) + str(rng.randrange(10**6))
    return "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", k=rng.randint(6, 10)))


def fill(store: HubStore, entries: int, rules: int, seed: int = 18) -> None:
    rng = random.Random(seed)
    lists = [(f"list-{n:02d}", KINDS[n % len(KINDS)]) for n in range(60)]
    now = time.time()
    rows = []
    for n in range(entries):
        list_id, kind = lists[n % len(lists)]
        valid_to = now + 86400 * rng.randint(30, 365) if n % 7 == 0 else None
        rows.append((list_id, f"{value(kind, rng)}{n}", f"reason {n % 40}", f"owner-{n % 12}", None, valid_to, n % 4, now))
    rule_rows = [(f"r{n:03d}", json.dumps(Rule.from_dict(
        {"id": f"r{n:03d}", "name": f"rule {n}", "reason": f"reason {n}", "score": 10 + n % 50,
         "lane": ("red", "amber", "green")[n % 3], "when": {"all": [
             {"fact": "declaration.weight_kg", "op": "gte", "value": 1000 + n},
             {"fact": "declaration.hs", "op": "prefix", "value": f"{n % 97:02d}"}]}}).to_dict()), now) for n in range(rules)]

    def write(cur: Cursor) -> None:
        cur.executemany(store.sql("INSERT INTO risk_watchlists (id, kind, name, lane, owner, updated_at) VALUES (?,?,?,?,?,?)"),
                        [(i, k, i, "red", "bench", now) for i, k in lists])
        cur.executemany(store.sql("INSERT INTO risk_entries (list_id, value, reason, owner, valid_from, valid_to, level,"
                                  " updated_at) VALUES (?,?,?,?,?,?,?,?)"), rows)
        cur.executemany(store.sql("INSERT INTO risk_rules (id, body, updated_at) VALUES (?,?,?)"), rule_rows)
    store.run_in_transaction(write)
    declarations.store_declarations(store, declgen.generate(5000, seed=seed), "bench")


def change(store: HubStore, share: float) -> int:
    """Delete `share` of the entries (every n-th) and add as many new ones, each change an approved draft (the
    change log the delta is built from), applied in bulk as an approval applies it."""
    step = round(1 / share)
    doomed = store.query("SELECT list_id, value FROM risk_entries")[::step]
    now = time.time()
    added = [(lid, f"NEW{v}", "new", "bench", None, None, 0, now) for lid, v in doomed]
    drafts = [(f"d{n}", "bench", now, "entry.delete", f"entry:{lid}:{v}", json.dumps({"list_id": lid, "value": v}),
               "", "approved") for n, (lid, v) in enumerate(doomed)]
    drafts += [(f"a{n}", "bench", now, "entry.put", f"entry:{e[0]}:{e[1]}",
                json.dumps(dict(zip(("list_id", "value", "reason", "owner", "valid_from", "valid_to", "level"), e[:7]))),
                "", "approved") for n, e in enumerate(added)]

    def write(cur: Cursor) -> None:
        cur.executemany(store.sql("DELETE FROM risk_entries WHERE list_id=? AND value=?"), doomed)
        cur.executemany(store.sql("INSERT INTO risk_entries (list_id, value, reason, owner, valid_from, valid_to, level,"
                                  " updated_at) VALUES (?,?,?,?,?,?,?,?)"), added)
        cur.executemany(store.sql("INSERT INTO risk_drafts (id, author, created_at, op, target, payload, note, status)"
                                  " VALUES (?,?,?,?,?,?,?,?)"), drafts)
        cur.executemany(store.sql("INSERT INTO risk_approvals (draft_id, approver, decision, reason, at)"
                                  " VALUES (?,?,?,?,?)"), [(d[0], "bench-2", "approved", "", now) for d in drafts])
    store.run_in_transaction(write)
    return len(doomed)


def timed(fn: Callable[..., T], *args: Any, **kw: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--pg", help="PostgreSQL URL (a fresh schema is made and dropped); default SQLite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        commands.generate_keypair(Path(tmp) / "risk.key", Path(tmp) / "risk.pub")
        key = RiskKey.load(Path(tmp) / "risk.key")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        if args.pg:
            import psycopg
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.pg}?options=-csearch_path%3D{schema}" if args.pg else str(Path(tmp) / "hub.sqlite3")
        store = open_store(url)
        try:
            db.migrate(store)
            tables.migrate(store)
            _, fill_s = timed(fill, store, args.entries, args.rules)
            print(f"filled {args.entries:,} entries and {args.rules} rules in {fill_s:.1f} s")
            content, content_s = timed(publish.content, store, time.time(), 72 * 3600)
            v1, v1_s = timed(publish.publish, store, key, "bench")
            changed = change(store, 0.01)
            v2, v2_s = timed(publish.publish, store, key, "bench")
        finally:
            store.close()
            if args.pg:
                import psycopg
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    result = {
        "backend": "postgresql" if args.pg else "sqlite", "entries": args.entries, "rules": args.rules,
        "published_entries": v1.entries, "read_state_s": round(content_s, 2), "publish_v1_s": round(v1_s, 2),
        "snapshot_mb": round(len(v1.snapshot) / 1e6, 2), "changed_entries": changed,
        "publish_v2_s": round(v2_s, 2), "delta_kb": round(len(v2.delta or b"") / 1e3, 1),
        "machine": platform.machine(), "python": platform.python_version()}
    print(f"read the approved state: {content_s:.1f} s ({len(content.entries):,} entries)")
    print(f"publish v1 (read, build, sign, verify, store): {v1_s:.1f} s, snapshot {result['snapshot_mb']} MB")
    print(f"publish v2 after {changed:,} changes (snapshot + delta): {v2_s:.1f} s, delta {result['delta_kb']} kB")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "risk_publish.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
