"""The risk tables in the hub database (same SQL on SQLite and PostgreSQL, created if missing).

Authoring: risk_watchlists, risk_entries, risk_rules and risk_settings hold the *approved* state;
a change is first a row of risk_drafts (pending) and reaches them only through an approval by another
user (risk_approvals). Every change is also written to the control room's hash-chained audit log with
its before/after (control_room/audit.py). risk_declarations holds the pre-arrival declarations,
risk_bundles what was published (snapshot and delta per version), risk_published_drafts which approved
drafts a stored version carries (the change log a delta is built from, riskhub/changes.py); what the stations applied or
refused is the hub's bundle_acks (central_sync/risk_delivery.py). The inspection feedback is the
officer's review (reviews.body `search`).
"""

from __future__ import annotations

from central_sync.hub.store import Cursor, HubStore

TABLES = """
CREATE TABLE IF NOT EXISTS risk_watchlists (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, lane TEXT NOT NULL, owner TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS risk_entries (
    list_id TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, owner TEXT NOT NULL,
    valid_from DOUBLE PRECISION, valid_to DOUBLE PRECISION, level INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (list_id, value));
CREATE TABLE IF NOT EXISTS risk_rules (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS risk_settings (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS risk_drafts (
    id TEXT PRIMARY KEY, author TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, op TEXT NOT NULL,
    target TEXT NOT NULL, payload TEXT NOT NULL, note TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS risk_drafts_status ON risk_drafts (status, created_at);
CREATE TABLE IF NOT EXISTS risk_approvals (
    draft_id TEXT PRIMARY KEY, approver TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,
    before TEXT, after TEXT, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS risk_declarations (
    ref TEXT PRIMARY KEY, container TEXT, plate TEXT, trader TEXT NOT NULL, goods TEXT NOT NULL,
    declared_empty INTEGER NOT NULL, weight_kg DOUBLE PRECISION, origin TEXT NOT NULL, sealed INTEGER NOT NULL,
    seal_id TEXT, source TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS risk_declarations_received ON risk_declarations (received_at);
CREATE TABLE IF NOT EXISTS risk_bundles (
    version BIGINT NOT NULL, kind TEXT NOT NULL, base_version BIGINT, sha256 TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, publisher TEXT NOT NULL,
    entries BIGINT NOT NULL, rules BIGINT NOT NULL, data {blob} NOT NULL,
    PRIMARY KEY (version, kind));
CREATE TABLE IF NOT EXISTS risk_published_drafts (
    draft_id TEXT PRIMARY KEY, version BIGINT NOT NULL);
"""


def migrate(store: HubStore) -> None:
    """Create the risk tables (the hub's own are created by `store.migrate()` first)."""
    stmts = [s for s in TABLES.format(blob=store.blob_type).split(";") if s.strip()]

    def ddl(cur: Cursor) -> None:
        for stmt in stmts:
            cur.execute(stmt)
    with store.schema_lock():
        store.run_in_transaction(ddl)
