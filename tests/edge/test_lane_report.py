"""The lane's state a station adds to its status for the control room (edge/lane_report.py, issue 21)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.schema import Review, Verdict
from edge.devices import Devices
from edge.lane_report import IDLE_S, Activity, LaneReport, activity, device_faults, lane_state
from edge.store import Store
from test_belt_restart import conveyor  # noqa: F401 - the real conveyor flow on the PLC simulator (a fixture)

NOW = 1_800_000_000.0
BUSY = Activity(40, 3, NOW - 30)


def test_store_activity_counts_the_last_hour_the_queue_and_the_last_item(tmp_path):
    with Store(tmp_path / "st", station="c1").open() as store:
        now = datetime.now(UTC)
        for n, (minutes, verdict) in enumerate([(90, Verdict.SUSPECT), (30, Verdict.SUSPECT), (20, Verdict.MANUAL),
                                                (2, Verdict.CLEAR)], 1):
            at = now - timedelta(minutes=minutes)
            store.commit(make_record("c1", n, verdict).model_copy(update={"started_at": at, "decided_at": at}), False)
        first = store.recent(10)[-1]
        store.add_review(first.id, Review(officer="B-1", decided_at=now, outcome="false_alarm"))
        got = activity(store, now.timestamp())
    assert got == Activity(3, 2, (now - timedelta(minutes=2)).timestamp())


def test_an_empty_store_has_no_last_item(tmp_path):
    with Store(tmp_path / "st", station="c1").open() as store:
        assert activity(store) == Activity(0, 0, None)


def test_a_latched_belt_wins_over_everything_and_keeps_its_reason_and_time():
    belt = {"latched": True, "reason": "interlock", "since": datetime.fromtimestamp(NOW - 100, UTC).isoformat(), "running": False}
    got = lane_state(belt, None, BUSY, NOW - 9999, NOW)
    assert got == {"state": "latched", "reason": "interlock", "since": NOW - 100, "items_per_hour": 40, "queue_depth": 3,
                   "last_item_at": NOW - 30}
    assert p.LaneState(**got).state == "latched"


def test_a_belt_not_running_is_stopped_and_a_held_lane_is_held_since_its_oldest_vehicle():
    assert lane_state({"latched": False, "running": False}, None, BUSY, NOW, NOW)["state"] == "stopped"
    held = lane_state(None, {"state": "held", "oldest_s": 240.0}, BUSY, NOW, NOW)
    assert (held["state"], held["reason"], held["since"]) == ("held", "waiting_for_officer", NOW - 240)
    assert lane_state(None, {"state": "waiting", "oldest_s": 5.0}, BUSY, NOW, NOW)["state"] == "running"


def test_no_item_for_the_idle_time_is_idle_since_the_last_item_or_the_start():
    assert lane_state(None, None, Activity(0, 0, NOW - IDLE_S - 1), NOW - 9999, NOW)["since"] == NOW - IDLE_S - 1
    fresh = lane_state(None, None, Activity(), NOW - 60, NOW)
    assert fresh["state"] == "running"
    started = lane_state(None, None, Activity(), NOW - IDLE_S, NOW)
    assert (started["state"], started["since"]) == ("idle", NOW - IDLE_S)
    assert lane_state({"latched": False, "running": True}, None, BUSY, NOW, NOW)["state"] == "running"


def test_only_devices_not_ok_are_faults_and_the_status_message_takes_them():
    devices = Devices()
    devices.mark("scanner", "ok")
    devices.mark("reader:gate", "degraded", "3 reconnects in a minute")
    faults = device_faults(devices.states())
    assert faults == [{"device": "reader:gate", "state": "degraded", "detail": "3 reconnects in a minute"}]
    report = LaneReport()
    assert report.status() == {}  # before the flow exists: nothing claimed
    report.follow(None, None, devices)
    msg = p.StatusMsg(station="c1", state="online", session=1, at=NOW, **report.status())
    assert msg.device_faults[0].device == "reader:gate" and msg.lane is not None


def test_an_older_stations_status_without_a_lane_is_accepted():
    old = b'{"v":1,"station":"c1","state":"online","session":3,"at":1800000000.0,"backlog":{},"counters":{}}'
    msg = p.decode_model(p.StatusMsg, old)
    assert msg.lane is None and msg.device_faults == []


async def test_a_real_conveyor_flow_on_the_plc_simulator_reports_its_latch(conveyor):
    """The belt's own belt_status() (edge/stations/conveyor.py) after an e-stop, as the hub receives it."""
    from polling import until
    from test_belt_restart import running

    report = LaneReport()
    report.follow(conveyor.flow, None, Devices())
    await running(conveyor)
    assert report.status()["lane"]["state"] in ("running", "idle")
    conveyor.sim.press_estop()
    await until(lambda: conveyor.flow.latch == "estop", "the e-stop latches the belt")
    msg = p.StatusMsg(station="t-1", state="online", session=1, at=NOW, **report.status())
    assert msg.lane is not None and (msg.lane.state, msg.lane.reason) == ("latched", "estop")
    assert msg.lane.since == datetime.fromisoformat(conveyor.flow.latched_at).timestamp()
