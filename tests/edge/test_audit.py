"""The audit chain: appends link up, and any tampering is detected and named by seq."""

import json
import sqlite3
from pathlib import Path

import pytest

from appliance import hashchain
from edge import audit
from edge.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as s:
        audit.ensure_schema(s.conn)
        for i in range(1, 6):
            audit.append(s.conn, "0A1B2C3D", "case.image_view", f"rec-{i}", {"mode": "colour", "n": i})
        yield s


def _untrigger(conn):
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")


def test_intact_chain_verifies(store):
    assert audit.verify(store) == (True, None)
    rows = audit.entries(store.conn)
    assert [e.seq for e in rows] == [5, 4, 3, 2, 1]
    assert rows[-1].prev_hash == audit.GENESIS
    assert all(newer.prev_hash == older.hash for newer, older in zip(rows, rows[1:], strict=False))


def test_updates_and_deletes_are_refused(store):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("UPDATE audit_log SET actor = 'X' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify(store) == (True, None)


def test_edited_row_is_named(store):
    _untrigger(store.conn)
    store.conn.execute("""UPDATE audit_log SET detail = '{"mode":"grey","n":3}' WHERE seq = 3""")
    assert audit.verify(store) == (False, 3)


def test_rehashed_row_breaks_the_next_link(store):
    _untrigger(store.conn)
    e = next(x for x in audit.entries(store.conn) if x.seq == 2)
    forged = audit.entry_hash(e.seq, e.at, "FFFFFFFF", e.action, e.object, e.detail, e.prev_hash)
    store.conn.execute("UPDATE audit_log SET actor = 'FFFFFFFF', hash = ? WHERE seq = 2", (forged,))
    assert audit.verify(store) == (False, 3)


def test_removed_row_is_named(store):
    _untrigger(store.conn)
    store.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify(store) == (False, 3)


def test_chain_survives_reopen_and_continues(tmp_path):
    with Store(tmp_path) as s:
        audit.ensure_schema(s.conn)
        audit.append(s.conn, "A1B2", "signin", "station")
    with Store(tmp_path) as s:
        entry = audit.append(s.conn, "A1B2", "signout", "station")
        assert entry.seq == 2
        assert audit.verify(s) == (True, None)


def test_adding_a_user_is_audited_without_the_pin(tmp_path):
    from edge.auth import add_user

    with Store(tmp_path) as s:
        add_user(s, "0a1b2c3d", "Officer Chan", "officer", "13579")
        (entry,) = audit.entries(s.conn)
        assert (entry.actor, entry.action, entry.object) == ("cli", "user.add", "0A1B2C3D")
        assert "13579" not in entry.detail and '"role":"officer"' in entry.detail


FIXTURE = Path(__file__).parent / "fixtures" / "audit_log_v1.json"


def _load_v1(conn) -> list[dict]:
    """Rows written by the pre-issue-15 code (frozen in fixtures/audit_log_v1.json), put back as they were."""
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    conn.executemany("INSERT INTO audit_log VALUES (:seq,:at,:actor,:action,:object,:detail,:prev_hash,:hash)", rows)
    return rows


def test_a_chain_written_by_the_old_code_verifies_and_new_entries_continue_it(tmp_path):
    with Store(tmp_path) as s:
        audit.ensure_schema(s.conn)
        rows = _load_v1(s.conn)
        assert audit.verify(s) == (True, None)
        entry = audit.append(s.conn, "0A1B2C3D", "case.image_view", "rec-2", {"mode": "grey"})
        assert entry.seq == len(rows) + 1 and entry.prev_hash == rows[-1]["hash"]
        assert hashchain.version_of(entry.hash) == hashchain.CURRENT
        assert audit.verify(s) == (True, None)


def test_tampering_with_an_old_chain_is_named(tmp_path):
    with Store(tmp_path) as s:
        audit.ensure_schema(s.conn)
        _load_v1(s.conn)
        _untrigger(s.conn)
        s.conn.execute("UPDATE audit_log SET actor = '0A1B2C3E' WHERE seq = 4")
        assert audit.verify(s) == (False, 4)
        assert str(audit.first_break(s.conn)) == ("station audit entry 4 was changed after it was written "
                                                  "(its content does not match its hash)")


def test_new_details_keep_non_ascii_text_as_is(store):
    entry = audit.append(store.conn, "0A1B2C3D", "case.decision", "rec-9", {"note": "行李"})
    assert entry.detail == '{"note":"行李"}' and audit.verify(store) == (True, None)


def test_the_command_line_says_which_entry_broke_and_why(tmp_path):
    """`edge audit verify` names the broken entry in a sentence and exits 1; an intact chain exits 0."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    config = tmp_path / "station.toml"
    config.write_text((root / "examples" / "xray.toml").read_text())
    env = {**__import__("os").environ, "EDGE_STATION__DATA_DIR": str(tmp_path / "data")}
    with Store(tmp_path / "data") as s:
        audit.ensure_schema(s.conn)
        for i in range(1, 4):
            audit.append(s.conn, "0A1B2C3D", "case.image_view", f"rec-{i}", {"n": i})

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edge.cli", "audit", "verify", "--config", str(config)],
                              capture_output=True, text=True, env=env, cwd=root, timeout=120)

    assert (verify().returncode, verify().stdout.strip()) == (0, "audit chain intact")
    with Store(tmp_path / "data") as s:
        _untrigger(s.conn)
        s.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    result = verify()
    assert result.returncode == 1
    assert result.stdout.strip() == "audit chain broken: station audit entry 3 follows entry 1, so entry 2 is missing"
