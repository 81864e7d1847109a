"""The model slots on disk (edge.model_rollout): every rename made durable by an fsync of its folder, and a stop at
any step of an install leaves a state the next start runs safely. Real files, real onnxruntime; the stop is an
exception raised in place of one rename (nothing after it runs, as after a power cut once the disk has it)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_sync.model_delivery import Criteria, RolloutRecord, envelope
from central_sync.commands import generate_keypair
from edge.detector import Engine
from edge.model_rollout import Rollout, RolloutConfig
from models.pool import InferencePool
from models.runtime import load_detector
from models.signing import open_folder, pack, sign_package
from model_rollout_kit import package

STATION = "gate-1"


class Stop(BaseException):
    """The process ends here (no handler runs)."""


class Station:
    """The slots' folder, the signing key and an engine on the configured model 2.0.0, as the daemon composes them."""

    def __init__(self, tmp: Path, pool: InferencePool) -> None:
        self.tmp, self.pool, self.data = tmp, pool, tmp / "data"
        self.key = generate_keypair(tmp / "models.key", tmp / "models.pub")  # the admin's model-signing key
        self.cfg = RolloutConfig(keys={"k": tmp / "models.pub"}, crash_limit=5)
        self.configured = package(tmp / "active", "2.0.0")

    def start(self) -> Rollout:
        rollout = Rollout.start(STATION, self.cfg, self.data)
        section_dir = rollout.slot_dir(rollout.state.active) if rollout.state.active else self.configured
        rollout.attach(Engine(load_detector(section_dir, overlap=32), self.pool), self.pool)
        if rollout.state.phase == "canary" and rollout.state.candidate is not None:
            rollout._run_candidate(rollout.state.candidate)
        return rollout

    def envelope(self, version: str, rollout_id: int) -> bytes:
        src = package(self.tmp / f"src-{version}", version)
        sign_package(src, self.key, "k")
        record = RolloutRecord(id=rollout_id, package=f"test-det-{version}", sha256="0" * 64, stations=None,
                               criteria=Criteria(), staged_by="admin", at=time.time())
        return envelope(record, pack(src))


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    async with InferencePool() as pool:
        yield Station(tmp_path, pool)


def _ino(path: Path) -> int:
    return os.stat(path).st_ino


async def test_each_rename_in_the_models_folder_is_followed_by_an_fsync_of_the_folder(station: Station,
                                                                                     monkeypatch) -> None:
    """state.json and a slot were renamed into data_dir/models and the folder was never fsynced: a power cut after
    the rename could bring the old name back (the old state, the old slot, or none). Now the new slot's files'
    names are fsynced before it is renamed, and the models folder after every rename."""
    rollout = station.start()
    folder = rollout.folder
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst) -> None:
        real_replace(src, dst)
        events.append(("replace", Path(dst).name, _ino(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert rollout.receive(1, station.envelope("2.1.0", 1)).outcome == "applied"
    monkeypatch.undo()
    renames = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert [events[i][1] for i in renames] == ["A", "state.json"]
    for i in renames:  # the folder's fsync comes after each rename, before anything else is renamed
        following = events[i + 1:next((j for j in renames if j > i), len(events))]
        assert ("fsync", _ino(folder)) in following, events[i]
    slot_renamed = renames[0]
    assert ("fsync", events[slot_renamed][2]) in events[:slot_renamed]  # the slot's own folder before its rename
    assert rollout.state.phase == "canary" and rollout.state.candidate == "A"


@pytest.mark.parametrize("step", range(4))
@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_stop_at_any_rename_of_an_install_over_a_canary_starts_safely(station: Station, monkeypatch,
                                                                              step: int, when: str) -> None:
    """2.1.0 is on canary in slot A when 2.7.0 arrives for the same slot. The slot was overwritten while state.json
    still named 2.1.0's signed package on canary: a stop after the slot's rename, before state.json's, started
    2.7.0 on canary under 2.1.0's criteria and name (a rollback would have remembered 2.1.0 as rolled back). Now
    the canary ends on disk first; a stop before or after any rename leaves either no candidate or the candidate
    state.json names, and the configured model active."""
    first = station.start()
    assert first.receive(1, station.envelope("2.1.0", 1)).outcome == "applied" and first.state.candidate == "A"
    renames = 0
    real_replace = os.replace

    def replace(src, dst) -> None:
        nonlocal renames
        renames += 1
        if renames == step + 1 and when == "before":
            raise Stop(f"stopped before renaming {src}")
        real_replace(src, dst)
        if renames == step + 1:
            raise Stop(f"stopped after renaming {src}")

    monkeypatch.setattr(os, "replace", replace)
    newer = station.envelope("2.7.0", 2)
    stopped = False
    try:
        first.receive(2, newer)
    except Stop:
        stopped = True
    monkeypatch.undo()
    assert stopped or step >= renames, "the install had fewer renames than this step"
    again = station.start()
    assert again.engine is not None and again.engine.detector is not None
    assert again.engine.detector.info.version == "2.0.0" and again.state.active is None
    state = again.state
    if state.phase == "canary":
        assert state.candidate == "A" and again.runner is not None
        slot = open_folder(again.slot_dir("A"), {"k": station.key.public_key()})
        assert slot.identity == state.candidate_signed, "state.json names another package than the slot holds"
        assert again.runner.candidate.info.version == slot.manifest.version
    else:
        assert state.candidate is None and again.runner is None


async def test_a_promoted_slot_that_does_not_load_gives_way_to_the_configured_model(station: Station) -> None:
    """Slot A, promoted, verifies but does not load here (its tiles of 256 pixels are over this station's
    `[model] max_tile_px` of 200): the station started with no model at all, every item manual, the configured model
    beside it unused. Now the slot gives way to the configured model, at this start and the next, and says why."""
    from edge.config import ModelSection
    from edge.model_rollout import SlotState, load_station_engine
    from edge.store import Store, StoreWriter
    from models.applicability import ScanFacts
    from models.signing import open_package
    from models.testgraphs import write_package

    src = write_package(station.tmp / "src-3.0.0", tile=256, version="3.0.0")
    sign_package(src, station.key, "k")
    first = Rollout.start(STATION, station.cfg, station.tmp / "data")
    first._install("A", open_package(pack(src), {"k": station.key.public_key()}).write)
    first.state = SlotState(active="A", phase="promoted")
    first._save()
    rollout = Rollout.start(STATION, station.cfg, station.tmp / "data")
    section = ModelSection(dir=station.configured, max_tile_px=200)
    async with StoreWriter(Store(station.tmp / "data", station=STATION)) as store:
        engine = await load_station_engine(rollout, section, STATION, store, station.pool, ScanFacts())
        alarms = dict(await store.call(store.store.standing_alarms))
    assert engine.detector is not None and engine.detector.info.version == "2.0.0" and "model_unavailable" not in alarms
    assert rollout.state.active is None and rollout.state.phase == "rolled_back"
    assert rollout.state.reason == ("model slot A does not load (model test-det 3.0.0 asks for tiles of 256 x 256 "
                                    "pixels ([input] size), more than the 200 pixels each way this station runs "
                                    "([model] max_tile_px), so it is not loaded (package "
                                    f"{rollout.slot_dir('A')})); the configured model runs instead")
    assert rollout.counters["slot_unloadable"] == 1
    assert Rollout.start(STATION, station.cfg, station.tmp / "data").state.active is None


async def test_a_full_disk_during_a_canary_never_stops_the_station_from_starting(station: Station,
                                                                                 small_disk: Path) -> None:
    """Each start during a canary counts in state.json; on a full disk that write raised out of Rollout.start, so
    the station failed at every start, 5 s apart, and inspected nothing. Now the start goes on (the canary
    resumes; the count is logged and counted as not saved) and counts again once there is room."""
    station.data = small_disk / "data"
    first = station.start()
    assert first.receive(1, station.envelope("2.1.0", 1)).outcome == "applied"
    filler = small_disk.fill()
    again = station.start()
    assert again.state.phase == "canary" and again.state.starts == 1 and again.runner is not None
    assert again.counters["state_not_saved"] == 1
    filler.unlink()
    third = station.start()
    assert third.state.phase == "canary" and third.state.starts == 1 and not third.counters["state_not_saved"]
    assert Rollout.start(STATION, station.cfg, station.data).state.starts == 2
