"""Hub processes that start together on one fresh PostgreSQL schema all come up.

Each `edge-hub run` creates the tables it needs at start-up (`CREATE TABLE IF NOT EXISTS`). PostgreSQL
refuses the second of two such statements for one table that overlap ("duplicate key value violates
unique constraint pg_type_typname_nsp_index"), and the refused process exited: of two hubs started at
once one was often gone, and a chaos test that then killed the other waited on a hub that did not exist
(test_chaos_processes.py::test_hub_killed_mid_commit). The migrations now take turns under an advisory
lock; here real processes released at one barrier run the start-up migrations of a hub.
"""

from __future__ import annotations

import multiprocessing
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import psycopg
import pytest

from central_sync.control_room import db as cr_db
from central_sync.hub import retention as hub_retention
from central_sync.hub.store import SCHEMA_LOCK_CLASS, open_store
from central_sync.riskhub import tables as risk_tables

PROCESSES = 4


def _start_up(url: str, barrier: Barrier, results: Queue[str]) -> None:  # a child process: what Hub and ControlRoom migrate on entry
    try:
        store = open_store(url)
        barrier.wait(60)
        store.migrate()
        cr_db.migrate(store)
        risk_tables.migrate(store)
        hub_retention.migrate(store)
        store.close()
        results.put("ok")
    except BaseException:
        results.put(traceback.format_exc())


@pytest.mark.parametrize("round_", range(3))
def test_hubs_starting_together_all_migrate(pg_url: str, round_: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_start_up, args=(pg_url, barrier, results)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    failed = [o for o in outcomes if o != "ok"]
    assert not failed, f"{len(failed)} of {PROCESSES} hub start-ups failed; the first:\n{failed[0]}"
    store = open_store(pg_url)
    assert store.query("SELECT count(*) FROM records")[0][0] == 0  # the tables are there, once
    assert store.query("SELECT count(*) FROM cr_users")[0][0] == 0
    store.close()


def test_schema_lock_is_reentrant_and_released(pg_url: str) -> None:
    """Nested migrations in one thread do not wait on themselves; the lock is held meanwhile, let go after."""
    store = open_store(pg_url)
    probe = psycopg.connect(pg_url, autocommit=True)

    def try_lock() -> bool:
        row = probe.execute("SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (SCHEMA_LOCK_CLASS,)).fetchone()
        return bool(row and row[0])
    with store.schema_lock(), store.schema_lock():
        hub_retention.migrate(store)  # takes it again, twice over
        assert not try_lock()
    assert try_lock()
    probe.close()
    store.close()
