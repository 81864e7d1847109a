"""The control-room audit chain over a real SQLite hub store: old chains verify, tampering is named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from appliance import hashchain
from central_sync.control_room import audit, db
from central_sync.hub.store import open_store

FIXTURE = Path(__file__).parent / "fixtures" / "cr_audit_v1.json"


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "hub.sqlite3"))
    db.migrate(s)
    yield s
    s.close()


def _load_v1(store) -> list[dict]:
    """Rows written by the pre-issue-15 code (non-ASCII escaped), put back as they were."""
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for r in rows:
        db.execute(store, "INSERT INTO cr_audit (seq, at, actor, action, object, detail, prev_hash, hash)"
                          " VALUES (?,?,?,?,?,?,?,?)", tuple(r.values()))
    return rows


def _tamper(store, sql: str) -> None:
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TRIGGER cr_audit_no_update")
    conn.execute("DROP TRIGGER cr_audit_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_a_chain_written_by_the_old_code_verifies_and_new_entries_continue_it(store):
    rows = _load_v1(store)
    assert audit.verify(store) == (len(rows), None, "")
    seq = audit.append(store, "王小明", "get:view", "/cr/api/stations", {"q": "行李"})
    newest = audit.entries(store, 1)[0]
    assert seq == len(rows) + 1 and newest["prev_hash"] == rows[-1]["hash"]
    assert hashchain.version_of(newest["hash"]) == hashchain.CURRENT and newest["detail"] == '{"q":"行李"}'
    assert audit.verify(store) == (len(rows) + 1, None, "")


def test_a_changed_old_entry_is_named(store):
    _load_v1(store)
    _tamper(store, "UPDATE cr_audit SET actor='mallory' WHERE seq=4")
    checked, broken, why = audit.verify(store)
    assert broken == 4 and why == ("control-room audit entry 4 was changed after it was written "
                                   "(its content does not match its hash)")


def test_a_removed_entry_is_named(store):
    for n in range(4):
        audit.append(store, "op1", "get:view", f"/x/{n}")
    _tamper(store, "DELETE FROM cr_audit WHERE seq=2")
    checked, broken, why = audit.verify(store)
    assert (checked, broken) == (3, 3) and why == "control-room audit entry 3 follows entry 1, so entry 2 is missing"


def test_a_rehashed_entry_breaks_the_next_link(store):
    for n in range(3):
        audit.append(store, "op1", "get:view", f"/x/{n}")
    row = audit.entries(store, 3)[-1]  # seq 1
    forged = audit.FORM.digest({**row, "actor": "mallory"})
    _tamper(store, f"UPDATE cr_audit SET actor='mallory', hash='{forged}' WHERE seq=1")
    _, broken, why = audit.verify(store)
    assert broken == 2 and "does not link to entry 1" in why
