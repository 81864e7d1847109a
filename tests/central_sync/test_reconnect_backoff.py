"""Reconnection back-off of the station's sync and the hub's link: only a session the broker kept starts it again.
A broker that has gone away, or one that accepts and soon ends the session (another client of the same name
taking it over), is tried at growing waits, not at the shortest for ever (hundreds of stations at once)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from central_sync import sender
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import Mosquitto, open_station_db
from central_sync.hub import link as hub_link
from central_sync.hub.link import HubLink
from central_sync.mqtt import attempt_after
from central_sync.publisher import Publisher
from polling import until, wait_until


def recorded(monkeypatch: pytest.MonkeyPatch, module: object) -> list[int]:
    """The back-off attempts `module` asks a wait for (each wait cut to 20 ms, so a test sees many)."""
    attempts: list[int] = []

    def delay(attempt: int, low: float, high: float) -> float:
        attempts.append(attempt)
        return 0.02
    monkeypatch.setattr(module, "backoff_delay", delay)
    return attempts


def test_only_a_session_kept_as_long_as_the_longest_wait_starts_the_back_off_again() -> None:
    cfg = BrokerConfig(reconnect_min_s=0.1, reconnect_max_s=5.0)
    assert attempt_after(3, None, cfg) == 4                        # refused, or never answered
    assert attempt_after(3, time.monotonic() - 1.0, cfg) == 4      # accepted, ended a second later
    assert attempt_after(3, time.monotonic() - 5.0, cfg) == 0      # kept


async def test_the_station_backs_off_from_a_broker_that_went_away_after_a_session(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = recorded(monkeypatch, sender)
    db = tmp_path / "station.db"
    open_station_db(db).close()
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = SyncConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=5.0)
        async with Publisher(cfg, "gate-1", db, tmp_path / "scans") as pub:
            await until(lambda: pub.stats()["connected"], "the station connected", timeout=20, in_thread=True)
            broker.kill()
            await until(lambda: len(attempts) >= 4, "four tries after the broker went", timeout=20)
    assert attempts[:4] == [1, 2, 3, 4]  # the version before: 0 first (any session the broker accepted)


def test_two_hub_processes_on_one_name_knock_each_other_off_at_growing_waits(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A misconfiguration docs/deployment.md names (the broker ends the session another client of the name takes
    over): each session the other's takeover ends at once counts as a failed try."""
    attempts = recorded(monkeypatch, hub_link)
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=5.0)
        links = [HubLink(cfg, "hub-a", queue.Queue(), "priority") for _ in range(2)]
        stop = threading.Event()
        runners = [threading.Thread(target=lk.run, args=(stop,), daemon=True) for lk in links]
        for r in runners:
            r.start()
        try:
            wait_until(lambda: len(attempts) >= 8, "eight sessions taken over", timeout=30)
        finally:
            stop.set()
            for r in runners:
                r.join(10)
    assert all("ended the session" in (lk.last_error or "") for lk in links), [lk.last_error for lk in links]
    assert max(attempts) >= 4, attempts  # the version before: every wait the shortest (attempt 0)


async def test_two_command_links_on_one_name_knock_each_other_off_at_growing_waits(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The station's command link reconnects through paho, which waited its shortest delay (1 s) again after any
    session the broker accepted: two processes on one name took it from each other every second for ever."""
    from central_sync import commands
    from central_sync.commands import CommandLink

    attempts = recorded(monkeypatch, commands)
    with Mosquitto(tmp_path / "broker") as broker:
        cfg = BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=5.0)
        links = [CommandLink(cfg, "gate-1-cmd", ["cpe/v1/gate-1/cmd"], lambda topic, payload: None) for _ in range(2)]
        async with links[0], links[1]:
            await until(lambda: len(attempts) >= 8, "eight sessions taken over", timeout=30)
    assert max(attempts) >= 4, attempts  # the version before: paho's shortest wait after every session
