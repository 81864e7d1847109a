"""The control room's own tables in the hub database (created if missing, same SQL on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from central_sync.hub.store import Cursor, HubStore, SqliteStore

T = TypeVar("T")

TABLES = """
CREATE TABLE IF NOT EXISTS cr_users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, lang TEXT,
    active INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS cr_sessions (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS cr_audit (
    seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cr_actions (
    id TEXT PRIMARY KEY, record_id TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL, assignee TEXT, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cr_actions_record ON cr_actions (record_id);
CREATE INDEX IF NOT EXISTS cr_actions_at ON cr_actions (at);
CREATE TABLE IF NOT EXISTS cr_commands (
    id TEXT PRIMARY KEY, station TEXT NOT NULL, op TEXT NOT NULL, args TEXT NOT NULL, issuer TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, outcome TEXT, reason TEXT,
    detail TEXT, result_at DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS cr_commands_changed ON cr_commands ((coalesce(result_at, issued_at)));
CREATE TABLE IF NOT EXISTS cr_command_context (
    id TEXT PRIMARY KEY, previous TEXT NOT NULL, undo_of TEXT);
CREATE TABLE IF NOT EXISTS cr_command_resends (
    id TEXT PRIMARY KEY, resend_of TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS cr_command_reports (
    id TEXT PRIMARY KEY, station TEXT NOT NULL, outcome TEXT NOT NULL, report TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS cr_station_settings (
    station TEXT PRIMARY KEY, settings TEXT NOT NULL, changed_at DOUBLE PRECISION, at DOUBLE PRECISION NOT NULL);
"""

SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS cr_audit_no_update BEFORE UPDATE ON cr_audit"
    " BEGIN SELECT RAISE(ABORT, 'cr_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS cr_audit_no_delete BEFORE DELETE ON cr_audit"
    " BEGIN SELECT RAISE(ABORT, 'cr_audit is append-only'); END",
)


def migrate(store: HubStore) -> None:
    """The hub's tables and the control room's (under the store's schema lock)."""
    stmts = [s for s in TABLES.split(";") if s.strip()]
    if isinstance(store, SqliteStore):
        stmts += list(SQLITE_TRIGGERS)
    with store.schema_lock():
        store.migrate()
        transact(store, lambda cur: [cur.execute(s) for s in stmts])


def transact(store: HubStore, fn: Callable[[Cursor], T]) -> T:
    """Run `fn(cursor)` in one transaction of the store (HubStoreError on failure)."""
    return store.run_in_transaction(fn)


def execute(store: HubStore, sql: str, args: tuple = ()) -> list[tuple]:
    """One statement; its rows when it returns any."""
    def run(cur: Cursor) -> list[tuple]:
        cur.execute(store.sql(sql), args)
        return cur.fetchall() if cur.description else []
    return transact(store, run)
