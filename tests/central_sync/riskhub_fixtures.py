"""Helpers of the riskhub tests: a hub store with the control room's and the risk tables, on SQLite or
PostgreSQL (the `store` fixture gives both), and a signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central_sync import commands
from central_sync.control_room import db
from central_sync.hub.store import HubStore, open_store
from central_sync.riskhub import tables
from central_sync.riskhub.publish import RiskKey


def open_risk_store(url: str) -> HubStore:
    store = open_store(url)
    db.migrate(store)
    tables.migrate(store)
    return store


def risk_key(tmp_path: Path) -> RiskKey:
    """A key pair written as `control-room-admin keygen` writes it, loaded as the hub loads it."""
    commands.generate_keypair(tmp_path / "risk.key", tmp_path / "risk.pub")
    return RiskKey.load(tmp_path / "risk.key")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubStore]:
    """The store on each backend (PostgreSQL: a fresh schema, see conftest's pg_url)."""
    url = str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_risk_store(url)
    yield s
    s.close()
