"""The gantry lane on the real PLC simulator (pymodbus) and the firmware emulator's scanner.

The barrier opens only for a `clear` verdict or an officer's or supervisor's decision, each read back;
vehicles leave in arrival order, by the exit or the search bay; a vehicle waiting for an officer
holds the scanner only once the configured queue is full; a link loss or a restart withdraws every
way out not yet taken, so nothing opens afterwards without a new decision.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import sys
from pathlib import Path

import pytest

from central_sync.schema import Verdict
from drivers.plc import open_plc
from drivers.plc.config import SEPARATOR
from drivers.plc.sim import SimItem
from drivers.plc.state import LinkChanged
from drivers.seal.state import SimSeal
from edge.config import load_config
from edge.errors import DiskFull
from edge.stations.gantry import separator_eye
from edge.stations.lane import FILE_NAME
from edge_factories import make_record
from gantry_station import LOOP_GAP_S, OFFICER, SUPERVISOR, gantry, plc_config, vehicle_scan
from polling import until

SUSPECT, CLEAR = vehicle_scan(True), vehicle_scan(False)
RELEASE = {"outcome": "false_alarm", "lane": "release"}
UHF = {"lane": {"kind": "llrp", "keepalive_s": 0.5, "sim": {"read_ms": 20}}}
TID, EPC = "E2801160200073F1A2B3C4D5", "300833B2DDD9014000000001"
RUNNER_TID, RUNNER_EPC = "E2801160200073F1A2B3C4D6", "300833B2DDD9014000000002"


SEAL = "HKEL0001234"
SEAL_READER = {"seals": {"kind": "seal-serial-sim", "removal_after_ms": 400, "sim": {"repeat_ms": 30}}}


def _queue_up(sim, n: int) -> list[int]:
    """n cars waiting before the entry light, nose to tail (2 m apart)."""
    return [sim.add_vehicle(4.0, lead_m=-1.0 - 6.0 * i - 0.5) for i in range(n)]


async def test_a_waiting_vehicle_holds_the_lane_only_when_the_queue_is_full_and_leaves_first(tmp_path) -> None:
    async with gantry(tmp_path, [SUSPECT, CLEAR, CLEAR], queue=2) as g:
        cars = _queue_up(g.sim, 3)
        records = await g.vehicles_decided(2)  # the second car is scanned while the first waits
        assert [r.verdict for r in records] == [Verdict.SUSPECT, Verdict.CLEAR]
        status = await until(g.flow.lane_status, "the lane is held", check=lambda s: s["state"] == "held")
        assert status["detail"].startswith("lane held: 1 vehicle waiting for an officer (oldest ")
        metrics = g.flow.parts.metrics.registry
        assert [metrics.get_sample_value(f"edge_lane_{m}") for m in ("vehicles", "waiting_for_officer", "held")] == \
            [2, 1, 1]
        await g.polls(20)
        assert len(g.records()) == 2, "a full lane scans no third vehicle"
        assert g.sim.vehicles[-1].lead_m <= g.sim.g.entry_stop_m, "the third car waits at the red entry light"
        assert g.sim.values()["entry_light"] == 1 and g.barrier_seen_open == [] and g.sim.passed == []

        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json={"lane": "search_bay"})
        assert r.status_code == 200 and r.json()["lane"]["outcome"] == "open", r.text
        await until(lambda: len(g.sim.passed) == 3, "all three cars left", timeout=60)
        assert g.sim.passed == cars  # arrival order
        assert [g.sim.outcomes[c] for c in cars] == ["search_bay", "exit", "exit"]
        assert [a["actor"] for a in g.lane_audit()] == [OFFICER[0]]
        assert g.lane_audit()[0]["detail"]["result"] == "open"
        assert g.lane_audit()[0]["detail"]["outcome"] is None  # the review follows the search
        assert (await until(g.flow.lane_status, check=lambda s: not s["vehicles"]))["state"] == "flowing"


async def test_a_vehicle_that_enters_while_the_scanner_is_busy_joins_the_lane_unscanned_and_waits(tmp_path) -> None:
    """A red-light runner keeps its place in the lane as `manual`: the decision on the vehicle ahead
    never lets it go, and its own decision does."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # nobody stops at the entry light
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the second car enters meanwhile
        first, second = _queue_up(g.sim, 2)
        records = await g.vehicles_decided(2)
        assert [(r.verdict, r.reason, r.scan is None) for r in records] == \
            [(Verdict.MANUAL, "device_fault", True), (Verdict.CLEAR, "clear", False)]
        assert [v["id"] for v in g.flow.lane_status()["vehicles"]] == [records[1].id, records[0].id]
        await until(lambda: g.sim.passed == [first], "the scanned car left")
        await g.polls(20)
        assert g.sim.passed == [first]
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json={"outcome": "cleared", "lane": "release"})
        assert r.status_code == 200, r.text
        await until(lambda: g.sim.passed == [first, second], "the unscanned car left after its own decision")


async def test_a_vehicle_whose_scan_fails_at_once_is_recorded_with_the_tag_read_after_it_entered(tmp_path) -> None:
    """The scan cannot start (the interlocks are open), yet the record waits for the identity window: the
    windscreen tag, read a moment after the vehicle entered, is on its `manual` record, so the officer who
    decides it knows which vehicle it is."""
    async with gantry(tmp_path, [CLEAR], readers=UHF) as g:
        g.flow.devices.scanner.emulator.interlocks_closed = False
        reader = g.flow.devices.readers["lane"]
        await until(lambda: reader.link_ok, "the UHF reader is up")
        _queue_up(g.sim, 1)
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the car is on the entry loop", interval=0.005)
        await asyncio.sleep(0.3)  # the antenna looks just past the entry loop
        reader.sim.present(EPC, TID, seconds=5)
        record, = await g.vehicles_decided(1)
    assert (record.verdict, record.reason, record.scan) == (Verdict.MANUAL, "device_fault", None)
    assert [(i.kind, i.value) for i in record.identities if i.kind.startswith("rfid")] == \
        [("rfid_tid", TID), ("rfid_epc", EPC)]


async def test_a_red_light_runners_tag_is_on_its_own_record_never_on_the_scanned_vehicles(tmp_path) -> None:
    """The antenna at the entry reads the car that ran the red light while the one ahead is scanned: that tag
    joins the runner's own (unscanned, manual) record, and the scanned car keeps only its own, though its tag is
    still in the antenna's field when the runner enters (read at its own entry, it is not the runner's)."""
    uhf = {"lane": {**UHF["lane"], "removal_after_ms": 100}}
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, readers=uhf) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # nobody stops at the entry light
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the second car enters meanwhile
        reader = g.flow.devices.readers["lane"]
        await until(lambda: reader.link_ok, "the UHF reader is up")
        for car, (tid, epc), held in zip(_queue_up(g.sim, 2), ((TID, EPC), (RUNNER_TID, RUNNER_EPC)), (10.0, 0.2),
                                         strict=True):
            await until(lambda car=car: any(v.id == car and v.covers(g.sim.g.eye_entry_m) for v in g.sim.vehicles),
                        f"car {car} on the entry loop", interval=0.005)
            await asyncio.sleep(0.3)  # the antenna looks just past the entry loop
            reader.sim.present(epc, tid, seconds=held)  # the first car's tag stays in the field throughout
        records = await g.vehicles_decided(2)
    tids = {r.scan is None: [i.value for i in r.identities if i.kind == "rfid_tid"] for r in records}
    assert tids == {False: [TID], True: [RUNNER_TID]}


async def test_the_tag_of_the_vehicle_ahead_read_again_is_flagged_on_the_next_vehicles_record(tmp_path) -> None:
    """The first car's tag falls silent, its record is written, and the entry antenna reads it again while the next car
    is in the lane (the first one still at the barrier, or its tag reflected back into the field): that read was on
    the next car's record as if it were its own. Now it is there flagged `tag_reread`, naming the first car's item,
    and the next car's own tag is not."""
    uhf = {"lane": {**UHF["lane"], "removal_after_ms": 100}}
    async with gantry(tmp_path, [CLEAR, CLEAR], readers=uhf) as g:
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the tag is read during it
        reader = g.flow.devices.readers["lane"]
        await until(lambda: reader.link_ok, "the UHF reader is up")
        first, second = _queue_up(g.sim, 2)
        for car, tags in ((first, [(EPC, TID)]), (second, [(RUNNER_EPC, RUNNER_TID), (EPC, TID)])):
            await until(lambda car=car: any(v.id == car and v.covers(g.sim.g.eye_entry_m) for v in g.sim.vehicles),
                        f"car {car} on the entry loop", timeout=30, interval=0.005)
            await asyncio.sleep(0.3)  # the antenna looks just past the entry loop
            for epc, tid in tags:
                reader.sim.present(epc, tid, seconds=0.2)
        records = await g.vehicles_decided(2)
    assert [i.value for i in records[0].identities if i.kind == "rfid_tid"] == [TID]
    tags = {i.value: [(n.code, n.values["item"]) for n in i.conflicts] for i in records[1].identities
            if i.kind == "rfid_tid"}
    assert tags == {RUNNER_TID: [], TID: [("tag_reread", records[0].id)]}
    assert g.flow.tags.tags_reread == 1


async def test_a_release_the_barrier_does_not_confirm_leaves_it_closed_and_says_so(tmp_path) -> None:
    async with gantry(tmp_path, [SUSPECT], readback_timeout_ms=800) as g:
        car, = _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        await until(lambda: g.sim.vehicles[0].lead_m >= g.sim.g.barrier_m - 0.5, "the car waits at the barrier")
        slow = g.sim.g
        g.sim.g = slow.model_copy(update={"barrier_actuation_s": 1000.0})  # a jammed barrier
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{record.id}/decision", json=RELEASE)
        assert r.status_code == 502 and r.json()["detail"] == "release_unconfirmed"
        vehicle, = g.flow.lane_status()["vehicles"]
        assert vehicle["waiting_for_officer"] and "barrier did not open" in vehicle["problem"]
        await until(lambda: g.sim.requests["barrier_open_request"] == 0, "the barrier is asked to close")
        assert g.sim.passed == [] and g.sim.barrier_pos < 1.0
        assert g.lane_audit()[-1]["detail"]["result"] == "failed"

        g.sim.g = slow
        r = await officer.post(f"/api/cases/{record.id}/decision", json=RELEASE)
        assert r.status_code == 200, r.text  # the same officer decides again while the vehicle still waits
        await until(lambda: g.sim.passed == [car], "the car left over the exit loop")


async def test_a_barrier_that_does_not_close_behind_a_vehicle_keeps_the_entry_red_until_it_closes(tmp_path) -> None:
    """Jammed open after a car left: the next vehicle could leave undecided, so none is let in (entry light red),
    the PLC shows degraded and the close is asked for again until it is read back; then the lane goes on."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=1, readback_timeout_ms=800) as g:
        first, second = _queue_up(g.sim, 2)
        await until(lambda: g.sim.barrier_pos == 1.0, "the barrier opened for the first car")
        working = g.sim.g
        g.sim.g = working.model_copy(update={"barrier_actuation_s": 1000.0})  # it jams open
        await until(lambda: g.sim.passed == [first], "the first car left")
        plc = await until(lambda: g.flow.devices.states()["plc"], "the PLC degraded",
                          check=lambda st: st["state"] == "degraded")
        assert "barrier did not close" in plc["detail"] and "entry light stays red" in plc["detail"]
        await g.polls(30)
        assert g.sim.values()["entry_light"] == 1 and len(g.records()) == 1, "nobody is let in meanwhile"
        assert g.sim.vehicles[0].id == second and g.sim.vehicles[0].lead_m <= g.sim.g.entry_stop_m

        g.sim.g = working  # freed: the next try reads it closed
        await until(lambda: g.flow.devices.states()["plc"]["state"] == "ok", "the PLC ok again", timeout=20)
        await until(lambda: g.sim.passed == [first, second], "the second car scanned and released", timeout=60)


async def test_after_a_link_loss_nothing_opens_without_a_new_decision(tmp_path) -> None:
    async with gantry(tmp_path, [SUSPECT, CLEAR], queue=2) as g:
        first, second = _queue_up(g.sim, 2)
        records = await g.vehicles_decided(2)  # the clear second car is released in its turn, behind the first
        g.plc.sim.mute()
        await until(lambda: not g.plc._state.link_ok, "the link is down")
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json=RELEASE)
        assert r.status_code == 502
        g.plc.sim.unmute()
        await until(lambda: g.plc._state.link_ok, "the link is back")
        await g.polls(30)
        assert g.barrier_seen_open == [] and g.sim.passed == []
        assert [v["waiting_for_officer"] for v in g.flow.lane_status()["vehicles"]] == [True, True]

        r = await officer.post(f"/api/cases/{records[0].id}/decision", json=RELEASE)
        assert r.status_code == 200, r.text
        await until(lambda: g.sim.passed == [first], "the first car left")
        await g.polls(30)
        assert g.sim.passed == [first], "the clear car behind waits for a decision after the link loss"
        supervisor = await g.client(SUPERVISOR)
        r = await supervisor.post(f"/api/cases/{records[1].id}/decision",
                                  json={"outcome": "override", "lane": "release", "note": "seen on camera, empty"})
        assert r.status_code == 200, r.text
        await until(lambda: g.sim.passed == [first, second], "the second car left")
        assert g.lane_audit()[-1]["detail"]["supervisor"] and g.lane_audit()[-1]["detail"]["reason"]


async def test_only_a_supervisor_releases_a_confirmed_threat_and_only_with_a_reason(tmp_path) -> None:
    async with gantry(tmp_path, [SUSPECT]) as g:
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        officer, supervisor = await g.client(OFFICER), await g.client(SUPERVISOR)
        r = await officer.post(f"/api/cases/{record.id}/decision",
                               json={"outcome": "threat_confirmed", "label": "drugs", "lane": "release"})
        assert (r.status_code, r.json()["detail"]) == (403, "release_needs_supervisor")
        r = await supervisor.post(f"/api/cases/{record.id}/decision", json={"outcome": "override", "lane": "release"})
        assert (r.status_code, r.json()["detail"]) == (422, "override_needs_reason")
        await g.polls(10)
        assert g.barrier_seen_open == [] and g.lane_audit() == []


async def test_a_confirmed_threat_waiting_in_the_lane_is_not_released_by_deciding_it_again(tmp_path) -> None:
    """Sent to the search bay behind a vehicle still waiting, a confirmed threat waits in the lane: deciding it
    again as cleared with a release would let it out without the supervisor's override."""
    async with gantry(tmp_path, [SUSPECT, SUSPECT], queue=2) as g:
        _queue_up(g.sim, 2)
        records = await g.vehicles_decided(2)
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[1].id}/decision",
                               json={"outcome": "threat_confirmed", "label": "drugs", "lane": "search_bay"})
        assert r.status_code == 200 and r.json()["lane"]["outcome"] == "queued", r.text
        r = await officer.post(f"/api/cases/{records[1].id}/decision", json={"outcome": "cleared", "lane": "release"})
        assert (r.status_code, r.json()["detail"]) == (403, "release_needs_supervisor")
        # nor by first turning it into a false alarm still bound for the search bay, then releasing it as cleared
        r = await officer.post(f"/api/cases/{records[1].id}/decision", json={"outcome": "false_alarm", "lane": "search_bay"})
        assert (r.status_code, r.json()["detail"]) == (403, "decision_needs_supervisor")
        assert next(r for r in g.records() if r.id == records[1].id).review.outcome == "threat_confirmed"
        await g.polls(10)
        assert g.barrier_seen_open == [] and g.sim.passed == []


async def test_a_daemon_restart_never_opens_the_barrier(tmp_path) -> None:
    """Vehicles the last daemon left in the lane wait for an officer again, even one it had released."""
    async with open_plc(plc_config(), "g-1/plc") as plc:
        async with gantry(tmp_path, [SUSPECT, CLEAR], queue=2, plc=plc) as g:
            first, _ = _queue_up(g.sim, 2)
            records = await g.vehicles_decided(2)
        async with gantry(tmp_path, [CLEAR], queue=2, plc=plc) as again:
            await again.polls(30)
            lane = again.flow.lane_status()
            assert [v["id"] for v in lane["vehicles"]] == [r.id for r in records]
            assert all(v["waiting_for_officer"] for v in lane["vehicles"]) and lane["state"] == "held"
            assert again.barrier_seen_open == [] and again.sim.passed == []
            officer = await again.client(OFFICER)
            r = await officer.post(f"/api/cases/{records[0].id}/decision",
                                   json=RELEASE)
            assert r.status_code == 200, r.text
            await until(lambda: again.sim.passed == [first], "the first car left")
            await again.polls(20)
            assert again.sim.passed == [first]


async def test_a_lane_file_that_cannot_be_read_holds_the_lane_until_it_is_removed(tmp_path) -> None:
    """The vehicles the file held may still stand at the barrier: no vehicle is let in, none is let out (a clear
    one that ran the red light included), and the alarm names the file; once a technician removed it, a restart
    runs the lane again."""
    data = tmp_path / "data"
    data.mkdir()
    (data / FILE_NAME).write_text('{"vehicles": [{"id": "0193a1b2-0000-7000-8000-00000000000')  # torn
    async with gantry(tmp_path, [CLEAR]) as g:
        await g.polls(20)
        assert g.sim.values()["entry_light"] == 1
        alarms = dict(g.store.standing_alarms())
        assert str(data / FILE_NAME) in alarms["lane_unknown"] and "does not know" in alarms["lane_unknown"]
        assert g.flow.lane_status()["state"] == "held"
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # it runs the red light
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{record.id}/decision", json={"outcome": "cleared", "lane": "release"})
        assert (r.status_code, r.json()["detail"]) == (409, "lane_unknown")
        await g.polls(20)
        assert g.barrier_seen_open == [] and g.sim.passed == []
    (data / FILE_NAME).unlink()
    async with gantry(tmp_path, [CLEAR]) as g:
        await until(lambda: g.sim.values()["entry_light"] == 3, "the entry light green")
        assert "lane_unknown" not in dict(g.store.standing_alarms())


async def test_a_supervisor_changes_a_confirmed_threat_in_the_lane_only_by_an_override(tmp_path) -> None:
    """A decision naming a way out is a decision again while the vehicle waits: a supervisor's plain `cleared` with
    `lane: search_bay` turned an officer's confirmed threat into `cleared`, without an override or a reason."""
    async with gantry(tmp_path, [vehicle_scan(True)]) as g:
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        officer, supervisor = await g.client(OFFICER), await g.client(SUPERVISOR)
        r = await officer.post(f"/api/cases/{record.id}/decision", json={"outcome": "threat_confirmed", "label": "firearm"})
        assert r.status_code == 200, r.text
        for body in ({"outcome": "cleared"}, {"outcome": "cleared", "lane": "search_bay"}):
            r = await supervisor.post(f"/api/cases/{record.id}/decision", json=body)
            assert (r.status_code, r.json()["detail"]) == (409, "already_decided"), body
        assert g.store.get(record.id).review.outcome == "threat_confirmed"
        r = await supervisor.post(f"/api/cases/{record.id}/decision",
                                  json={"outcome": "override", "note": "searched: the firearm is a toy", "lane": "search_bay"})
        assert r.status_code == 200, r.text
        assert g.store.get(record.id).review.outcome == "override"


async def test_a_supervisor_who_checked_the_lane_ends_the_hold_for_an_unreadable_lane_file(tmp_path) -> None:
    """No technician, no restart: a supervisor confirms on the screen that the lane holds no vehicle but those the
    station lists (audited); the unreadable file is kept beside for a technician, the alarm clears, the vehicle
    that ran the red light is decided and leaves, and the entry light turns green again."""
    data = tmp_path / "data"
    data.mkdir()
    torn = '{"vehicles": [{"id": "0193a1b2-0000-7000-8000-00000000000'
    (data / FILE_NAME).write_text(torn)
    async with gantry(tmp_path, [CLEAR]) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # it runs the red light
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        officer, supervisor = await g.client(OFFICER), await g.client(SUPERVISOR)
        assert (await officer.post("/api/lane/confirm", json={"vehicles": []})).status_code == 403
        r = await supervisor.post("/api/lane/confirm", json={"vehicles": []})  # checked before the car ran the light
        assert (r.status_code, r.json()["detail"]) == (409, "lane_changed")
        assert g.flow.lane_status()["unknown"]
        r = await supervisor.post("/api/lane/confirm", json={"vehicles": [record.id]})
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "confirmed" and r.json()["lane"]["unknown"] == ""
        assert [v["id"] for v in r.json()["lane"]["vehicles"]] == [record.id]
        assert [p.read_text() for p in data.glob("lane.unreadable-*.json")] == [torn]
        assert "lane_unknown" not in dict(g.store.standing_alarms())
        again = await supervisor.post("/api/lane/confirm", json={"vehicles": [record.id]})
        assert again.json()["detail"] == "lane_known"  # nothing to confirm
        audit = (await supervisor.get("/api/audit")).json()["entries"]
        assert [a["action"] for a in audit].count("lane.confirm") == 3
        r = await officer.post(f"/api/cases/{record.id}/decision", json={"outcome": "cleared", "lane": "release"})
        assert r.status_code == 200, r.text
        await until(lambda: len(g.sim.passed) == 1, "the vehicle left")
        await until(lambda: g.sim.values()["entry_light"] == 3, "the entry light green")
    async with gantry(tmp_path, [CLEAR]) as g:  # a restart reads the lane the supervisor confirmed
        await until(lambda: g.sim.values()["entry_light"] == 3, "the entry light green")
        assert "lane_unknown" not in dict(g.store.standing_alarms())


async def test_a_decision_while_the_barrier_opens_for_that_vehicle_waits_and_is_refused(tmp_path) -> None:
    """The clear car behind is served as the first leaves; an officer sending it to the search bay while its
    barrier opens is told it is leaving by the barrier (it does), never that the search-bay gate is open: the
    lane then knows it left, closes the barrier behind it and goes on."""
    async with gantry(tmp_path, [SUSPECT, CLEAR], queue=2) as g:
        first, second = _queue_up(g.sim, 2)
        records = await g.vehicles_decided(2)
        g.sim.g = g.sim.g.model_copy(update={"barrier_actuation_s": 1.0})  # the read-back takes a moment
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json=RELEASE)
        assert r.status_code == 200, r.text

        await until(lambda: g.sim.passed == [first] and g.sim.requests["barrier_open_request"] == 0,
                    "the barrier closing behind the first car", interval=0.005)
        await until(lambda: g.sim.requests["barrier_open_request"] == 1, "the barrier opening for the second car",
                    interval=0.005)
        assert not g.flow.lane.find(records[1].id).leaving  # its read-back is under way
        r = await officer.post(f"/api/cases/{records[1].id}/decision", json={"lane": "search_bay"})
        assert (r.status_code, r.json()["detail"]) == (409, "vehicle_leaving")
        await until(lambda: g.sim.passed == [first, second], "both cars left", timeout=60)
        assert g.sim.outcomes[second] == "exit"
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert lane["unexpected_exits"] == 0
        await until(lambda: g.sim.requests["barrier_open_request"] == 0, "the barrier closed behind it")
        assert g.lane_audit()[-1]["detail"]["code"] == "vehicle_leaving"


def _once_the_barrier_opened(g, then) -> None:
    """`then()` runs once, right after the barrier's next opening is read back, before the flow's next step (a race
    hook: the real driver rarely opens that window)."""
    plc = g.flow.devices.plc
    request_barrier = plc.request_barrier

    async def opened_then(open: bool) -> None:
        await request_barrier(open)
        if open:
            plc.request_barrier = request_barrier
            then()
    plc.request_barrier = opened_then


async def test_a_link_loss_while_the_barrier_opens_leaves_no_vehicle_stuck_in_the_lane(tmp_path) -> None:
    """The link-loss event is handled between the barrier's read-back and the flow's next step (a race hook: the
    real driver rarely opens that window). The way out is withdrawn, the barrier is asked to close again and the
    officer told so; the car already let through leaves the lane over the exit loop."""
    async with gantry(tmp_path, [SUSPECT]) as g:
        car, = _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        await until(lambda: g.sim.vehicles[0].lead_m >= g.sim.g.barrier_m - 0.5, "the car waits at the barrier")
        _once_the_barrier_opened(g, lambda: g.flow._on_link(LinkChanged(False, "PLC g-1/plc heartbeat stale for 700 ms",
                                                                          0.0)))
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{record.id}/decision", json=RELEASE)
        assert (r.status_code, r.json()["detail"]) == (502, "release_unconfirmed")
        assert "asked to close again" in g.lane_audit()[-1]["detail"]["message"]
        await until(lambda: g.sim.passed == [car], "the car left")
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert lane["unexpected_exits"] == 0
        await until(lambda: g.sim.requests["barrier_open_request"] == 0, "the barrier closed behind it")


async def test_a_lane_held_while_the_barrier_opens_closes_it_again(tmp_path) -> None:
    """The lane is held (a follower found behind a vehicle that already left: an exit tailgate) between the barrier's
    read-back and the flow's next step, the decision's check before the request long passed. The barrier stood open
    in a held lane, the car on its way out; now its way out is withdrawn, the barrier asked to close again and the
    officer told why: no vehicle is let out until a supervisor confirms the lane."""
    async with gantry(tmp_path, [SUSPECT]) as g:
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        flow = g.flow
        _once_the_barrier_opened(g, lambda: flow._exit_tailgate("a vehicle may have followed the last one out", []))
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{record.id}/decision", json=RELEASE)
        assert (r.status_code, r.json()["detail"]) == (502, "release_unconfirmed")
        message = g.lane_audit()[-1]["detail"]["message"]
        assert "asked to close again" in message and "a vehicle may have followed the last one out" in message
        assert not flow.lane.find(record.id).leaving
        await until(lambda: g.sim.requests["barrier_open_request"] == 0, "the barrier closed again")
        assert flow.lane_status()["held_for"] == "exit_tailgate"


async def test_a_lane_held_while_the_light_turns_green_never_opens_the_barrier(tmp_path) -> None:
    """The lane is held (an exit tailgate) while the exit light's green is read back, the decision's check passed: the
    barrier was asked to open all the same (and closed again after), raised in a held lane. It stays down now."""
    async with gantry(tmp_path, [SUSPECT]) as g:
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        plc, flow = g.flow.devices.plc, g.flow
        request_light, request_barrier, asked = plc.request_light, plc.request_barrier, []

        async def green_then_held(color: str) -> None:
            await request_light(color)
            if color == "green":
                plc.request_light = request_light
                flow._exit_tailgate("a vehicle may have followed the last one out", [])

        async def barrier(open: bool) -> None:
            asked.append(open)
            await request_barrier(open)
        plc.request_light, plc.request_barrier = green_then_held, barrier
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{record.id}/decision", json=RELEASE)
        assert (r.status_code, r.json()["detail"]) == (502, "release_unconfirmed")
        assert True not in asked and g.sim.requests["barrier_open_request"] == 0
        assert "a vehicle may have followed the last one out" in g.lane_audit()[-1]["detail"]["message"]
        assert not flow.lane.find(record.id).leaving and flow.lane.find(record.id).opened is None
        await until(lambda: g.sim.values()["light"] != 3, "the exit light no longer green")


async def test_a_vehicle_whose_scan_a_restart_cut_short_is_recorded_manual_and_can_be_decided(tmp_path) -> None:
    """The daemon stops while a car is scanned: its record was never written, yet the lane file holds it. The next
    daemon records it `manual` / `restarted`, so that an officer can decide it and the lane goes on."""
    async with open_plc(plc_config(), "g-1/plc") as plc:
        async with gantry(tmp_path, [CLEAR], plc=plc) as g:
            g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the daemon stops meanwhile
            car, = _queue_up(g.sim, 1)
            await until(lambda: g.flow.lane.vehicles, "the car's scan started", interval=0.005)
            assert g.records() == []
        async with gantry(tmp_path, [CLEAR], plc=plc) as again:
            record, = await again.vehicles_decided(1)
            assert (record.verdict, record.reason, record.scan) == (Verdict.MANUAL, "restarted", None)
            vehicle, = again.flow.lane_status()["vehicles"]
            assert vehicle["id"] == record.id and vehicle["waiting_for_officer"]
            await again.polls(20)
            assert again.barrier_seen_open == [] and again.sim.passed == []
            officer = await again.client(OFFICER)
            r = await officer.post(f"/api/cases/{record.id}/decision", json={"outcome": "cleared", "lane": "release"})
            assert r.status_code == 200, r.text
            await until(lambda: again.sim.passed == [car], "the car left")


async def test_a_vehicle_the_full_store_could_not_record_is_recorded_once_there_is_room_and_can_be_decided(
        tmp_path) -> None:
    """The station database is full as a car is scanned: it waits `manual` / `store_full` without a record, and no
    officer can decide it. Once the database has room again its record is written as it was, so that an officer
    decides it and the lane goes on."""
    async with gantry(tmp_path, [CLEAR]) as g:
        officer = await g.client(OFFICER)  # the screen's store opened before (as the daemon opens it at its start)
        writer = g.flow.parts.store
        await writer.call(_fill, g.store)
        car, = _queue_up(g.sim, 1)
        vehicle, = (await until(g.flow.lane_status, "the car waits for an officer",
                                check=lambda s: s["vehicles"] and s["vehicles"][0]["waiting_for_officer"]))["vehicles"]
        assert vehicle["verdict"] == "manual" and g.store.get(vehicle["id"]) is None
        r = await officer.post(f"/api/cases/{vehicle['id']}/decision", json={"outcome": "cleared", "lane": "release"})
        assert (r.status_code, r.json()["detail"]) == (404, "case_not_found")

        await writer.call(g.store.conn.execute, "PRAGMA max_page_count = 1073741823")
        await writer.call(g.store.check_space)
        record = await until(lambda: g.store.get(vehicle["id"]), "the car recorded once there is room")
        assert (record.verdict, record.reason, record.scan is not None) == (Verdict.MANUAL, "store_full", True)
        assert g.barrier_seen_open == [] and g.sim.passed == []
        r = await officer.post(f"/api/cases/{record.id}/decision", json={"outcome": "cleared", "lane": "release"})
        assert r.status_code == 200 and r.json()["lane"]["outcome"] == "open", r.text
        await until(lambda: g.sim.passed == [car], "the car left")


async def test_a_car_that_left_on_its_clear_verdict_as_the_store_filled_is_recorded_clear(tmp_path) -> None:
    """The first record to find the database full is acted on with its own verdict: the car left on its clear
    verdict. Its late record said manual / store_full (an undecided case no officer could decide, the car gone)."""
    async with gantry(tmp_path, [vehicle_scan(True), vehicle_scan(False)], queue=2) as g:
        orig, calls = g.store.commit, []

        def commit(record, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(record.id)
            if len(calls) == 2:  # another writer (the screen's store) filled the database as car 2 is recorded
                _fill(g.store)
                g.store.full = None
                g.store.reserve.write(None)  # ...so the flow's commit is the first to find it full
            return orig(record, *args, **kwargs)

        g.store.commit = commit  # type: ignore[method-assign]
        _queue_up(g.sim, 2)
        status = await until(g.flow.lane_status, "two cars judged", timeout=60,
                             check=lambda s: len(s["vehicles"]) == 2 and all(v["verdict"] for v in s["vehicles"]))
        second = status["vehicles"][1]["id"]
        await until(lambda: list(g.flow._unrecorded), "car 2's record kept")
        await g.flow.parts.store.call(g.store.conn.execute, "PRAGMA max_page_count = 1073741823")
        await g.flow.parts.store.call(g.store.check_space)
        record = await until(lambda: g.store.get(second), "car 2 recorded late", timeout=30)
        assert (record.verdict, record.reason) == (Verdict.CLEAR, "clear")


def _fill(store) -> None:
    """The station database full (tests/edge/test_disk_full.py): records go in until one does not fit."""
    store.conn.execute(f"PRAGMA max_page_count = {store.conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    with pytest.raises(DiskFull):
        for _ in range(10_000):
            store.commit(make_record(), scan_stored=False)


async def _blip(g, x_m: float, polls: int) -> None:
    """Something on the loop at x_m for `polls` polls, once the PLC has read it free: a truck's trailer behind its
    cab, or a loop that chatters."""
    await g.polls(2)
    trailer = SimItem(-1, x_m + 0.5, 1.0, fixed=True)
    g.sim.vehicles.append(trailer)
    await g.polls(polls)
    g.sim.vehicles.remove(trailer)


async def test_a_trailer_behind_its_cab_on_the_entry_loop_is_no_second_vehicle(tmp_path) -> None:
    """The entry loop goes free between the cab and the trailer while the truck is scanned: that is a flap,
    counted, not an unscanned vehicle joining the lane (on which an officer's decision would move the one behind)."""
    async with gantry(tmp_path, [CLEAR], queue=3, loop_gap_s=1.0) as g:
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan
        truck, = _queue_up(g.sim, 1)
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the cab on the entry loop", interval=0.005)
        await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), "the gap behind the cab", interval=0.005)
        await _blip(g, g.sim.g.eye_entry_m, 5)
        await until(lambda: g.sim.passed == [truck], "the truck left", timeout=60)
        record, = g.records()
        assert record.verdict is Verdict.CLEAR
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert lane["loop_flaps"]["eye_entry"] == 1
        assert g.flow.parts.metrics.registry.get_sample_value("edge_lane_loop_flaps_total", {"loop": "eye_entry"}) == 1


async def test_a_trailer_on_the_exit_loop_does_not_let_the_next_vehicle_out_of_the_lane(tmp_path) -> None:
    """The exit loop goes free between the cab and the trailer: the truck has left only once the trailer has, so
    the barrier opens for the clear car behind after that, and the car is the one that leaves the lane by it. The
    entry loop counted the trailer too, so it is no exit tailgate."""
    async with gantry(tmp_path, [SUSPECT, CLEAR], queue=2, loop_gap_s=1.0) as g:
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the car behind comes well after the truck
        truck = g.sim.add_vehicle(10.0, lead_m=-1.5, coupling=(4.0, 6.0))  # 4 m cab, 2 m drawbar, 4 m trailer
        car = g.sim.add_vehicle(4.0, lead_m=-14.0)
        records = await g.vehicles_decided(2)
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json=RELEASE)
        assert r.status_code == 200, r.text
        await until(lambda: g.sim.passed == [truck, car], "both left", timeout=60)
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert lane["unexpected_exits"] == 0, "the trailer took the car out of the lane before it left"
        assert [g.sim.outcomes[v] for v in (truck, car)] == ["exit", "exit"] and lane["loop_flaps"]["eye_exit"] == 1
        assert lane["unknown"] == "" and "exit_tailgate" not in dict(g.store.standing_alarms())


async def test_a_sealed_vehicle_brought_back_after_it_left_the_lane_shows_its_seal_again(tmp_path) -> None:
    """A seal that left the range stayed its vehicle's for 5 minutes, also once the vehicle had left the lane: the
    same vehicle brought back through the lane meanwhile showed no seal (manual, seal_not_intact where declared).
    Now the hold ends when the vehicle has left the lane (here its seal went out of range after it left)."""
    async with gantry(tmp_path, [CLEAR, CLEAR], seals=SEAL_READER) as g:
        seals = g.flow.devices.seals["seals"]
        await until(lambda: seals.link_ok, "the seal reader is up")
        for n in (1, 2):  # the vehicle, then the same vehicle brought back
            car, = _queue_up(g.sim, 1)
            await until(lambda car=car: any(v.id == car and v.covers(g.sim.g.eye_entry_m) for v in g.sim.vehicles),
                        f"car {car} on the entry loop", interval=0.005)
            in_range = seals.sim.present(SimSeal(SEAL), 60)
            await g.vehicles_decided(n)
            await until(g.flow.lane_status, f"car {car} left the lane", check=lambda s: not s["vehicles"], timeout=60)
            in_range.cancel()
            await until(lambda: not g.flow.tags._present, "the seal is out of range")
        records = g.records()
    assert [[i.value for i in r.identities if i.kind == "seal"] for r in records] == [[SEAL], [SEAL]]


@pytest.mark.parametrize("separator", [True, False], ids=["separator", "no-separator"])
async def test_a_car_following_closer_than_loop_gap_s_is_its_own_vehicle_where_the_separator_saw_the_gap(
        tmp_path, separator: bool) -> None:
    """Two cars 4 m apart (0.4 s on the entry loop at 10 m/s, under loop_gap_s = 1 s): the vehicle separator,
    clear between them, makes the follower a vehicle of its own (unscanned, `manual`, its own tag on its own
    record). Without it the follower is taken for the first car's trailer: one record, which gets both tags."""
    uhf = {"lane": {**UHF["lane"], "removal_after_ms": 100}}
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, readers=uhf, loop_gap_s=1.0, separator=separator) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # nobody stops at the entry light
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the follower enters meanwhile
        reader = g.flow.devices.readers["lane"]
        await until(lambda: reader.link_ok, "the UHF reader is up")
        cars = [g.sim.add_vehicle(4.0, lead_m=-1.5), g.sim.add_vehicle(4.0, lead_m=-9.5)]
        for car, (tid, epc), held in zip(cars, ((TID, EPC), (RUNNER_TID, RUNNER_EPC)), (10.0, 0.2), strict=True):
            await until(lambda car=car: any(v.id == car and v.covers(g.sim.g.eye_entry_m) for v in g.sim.vehicles),
                        f"car {car} on the entry loop", interval=0.005)
            await asyncio.sleep(0.3)  # the antenna looks just past the entry loop
            reader.sim.present(epc, tid, seconds=held)
        if not separator:
            record, = await g.vehicles_decided(1)
            await g.polls(50)
            assert len(g.records()) == 1, "the follower was taken for a trailer"
            assert sorted(i.value for i in record.identities if i.kind == "rfid_tid") == [TID, RUNNER_TID]
            return
        records = await g.vehicles_decided(2)
        assert g.flow.lane_status()["separator_faults"] == 0
    tids = {r.scan is None: ([i.value for i in r.identities if i.kind == "rfid_tid"], r.verdict) for r in records}
    assert tids == {False: ([TID], Verdict.CLEAR), True: ([RUNNER_TID], Verdict.MANUAL)}


@pytest.mark.parametrize("beam_past_loop_m", [0.1, 1.0])
async def test_a_car_following_that_breaks_the_separator_beam_after_the_loop_is_its_own_vehicle(
        tmp_path, beam_past_loop_m) -> None:
    """A car following 4 m behind at 10 m/s blocks the loop while the beam is still clear, and breaks it a poll or so
    later (beam 0.1 m past the loop's edge) or 0.1 s later (1 m past). The wait was 2 polls (about 20 ms): the second
    was a loop fault, no vehicle, no record, no place in the lane (unscanned, it would leave on the decision of the car
    behind it). The wait is [gantry] separator_wait_s (0.5 s) from the loop's edge: it is a vehicle of its own."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0,
                                             "vehicle_separator_m": g.sim.g.eye_entry_m + beam_past_loop_m})
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the follower enters meanwhile
        g.sim.add_vehicle(4.0, lead_m=-1.5), g.sim.add_vehicle(4.0, lead_m=-9.5)
        records = await g.vehicles_decided(2)
        lane = g.flow.lane_status()
        assert (lane["loop_faults"], lane["separator_faults"]) == (0, 0)
    assert sorted((r.scan is None, r.verdict) for r in records) == [(False, Verdict.CLEAR), (True, Verdict.MANUAL)]


async def test_a_truck_and_the_trailer_coupled_to_it_stay_one_vehicle_where_the_separator_saw_no_gap(tmp_path) -> None:
    """The entry loop goes free for 0.2 s between the cab and its trailer; the separator, broken by the drawbar,
    says they are one vehicle: one record, one flap, no separator fault."""
    async with gantry(tmp_path, [CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        truck = g.sim.add_vehicle(10.0, lead_m=-1.5, coupling=(4.0, 6.0))  # 4 m cab, 2 m drawbar, 4 m trailer
        await until(lambda: g.sim.passed == [truck], "the truck left", timeout=60)
        record, = g.records()
        assert record.verdict is Verdict.CLEAR
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert (lane["loop_flaps"]["eye_entry"], lane["separator_faults"]) == (1, 0)


async def test_an_entry_loop_that_chatters_with_the_separator_clear_is_a_loop_fault_not_a_vehicle(tmp_path) -> None:
    """The entry loop blocked again within loop_gap_s of a car leaving it, the vehicle separator's beam clear all the
    while (nothing on the loop: it chatters), was taken for a car following: a phantom vehicle took a place in the
    lane, and an officer releasing it could let the next real vehicle go. A vehicle following breaks the beam within
    SEPARATOR_POLLS polls of the loop's edge; this never did: a loop fault, counted, and no vehicle."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        _queue_up(g.sim, 1)
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the car on the entry loop", interval=0.005)
        await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), "the car off the entry loop", interval=0.005)
        await g.polls(2)  # the PLC read the loop free
        g.sim.entry_loop_stuck = True  # within loop_gap_s of the car, the beam clear
        await g.polls(5)
        g.sim.entry_loop_stuck = None
        record, = await g.vehicles_decided(1)
        lane = await until(g.flow.lane_status, "the wait for the beam over", check=lambda s: s["loop_faults"])
        assert [v["id"] for v in lane["vehicles"]] in ([record.id], [])  # the car, unless it left already
        assert len(g.records()) == 1 and (lane["loop_faults"], lane["separator_faults"]) == (1, 0)
        assert g.flow.parts.metrics.registry.get_sample_value("edge_lane_loop_faults_total") == 1


@pytest.mark.parametrize("stuck", [True, False], ids=["stuck-broken", "stuck-clear"])
async def test_a_separator_that_contradicts_the_entry_loop_sends_the_vehicles_to_manual(tmp_path, stuck: bool) -> None:
    """Broken through the long gap between two cars, or clear while a car passes: the separator cannot be
    trusted to tell a car following from a trailer, so neither car is cleared; each fault is counted."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, separator=True) as g:
        await g.polls(5)
        g.sim.separator_stuck = stuck
        _queue_up(g.sim, 2)
        records = await g.vehicles_decided(2)
        assert [(r.verdict, r.reason) for r in records] == [(Verdict.MANUAL, "device_fault")] * 2
        assert g.barrier_seen_open == []
        assert g.flow.lane_status()["separator_faults"] == 2
        assert g.flow.parts.metrics.registry.get_sample_value("edge_lane_separator_faults_total") == 2


async def test_a_vehicle_the_plc_grants_no_xray_permit_is_not_scanned_and_goes_to_manual(tmp_path) -> None:
    """The X-ray permit was requested and its refusal only logged: with an interlock open (the PLC grants no permit)
    the vehicle's scan started all the same. Now it is not scanned: manual, device_fault, the refusal named."""
    async with gantry(tmp_path, [CLEAR]) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0})  # it drives on through the red light
        g.sim.set_interlock("shutter_door", False)
        _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")
        assert record.scan is None and g.flow.devices.scanner.emulator.counters["scans"] == 0
        assert g.sim.values()["xray_permit"] == 0


async def test_a_car_following_when_the_plc_link_drops_is_no_loop_fault(tmp_path) -> None:
    """The link drops right after the poll that saw a car following on the entry loop, before the poll that would
    show it breaking the separator's beam. The polls of a link that is down read nothing (the separator's last
    state stands): counting them, the wait took the car for a loop that chatters, no vehicle; it then had no place
    in the lane, unscanned behind the car ahead. A link lost during the wait makes the edge a vehicle, not cleared."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.sim.g = g.sim.g.model_copy(update={"entry_stop_m": -100.0, "vehicle_separator_m": g.sim.g.eye_entry_m + 0.1})
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the follower enters meanwhile
        on_eye = g.flow._on_eye

        def link_drops_when_the_follower_waits(event) -> None:  # race hook: the PLC goes silent at this poll
            on_eye(event)
            if g.flow._unseparated is not None:
                g.plc.sim.mute()
        g.flow._on_eye = link_drops_when_the_follower_waits
        g.sim.add_vehicle(4.0, lead_m=-1.5), g.sim.add_vehicle(4.0, lead_m=-9.5)
        await until(lambda: not g.plc._state.link_ok, "the link is down", timeout=30)
        g.flow._on_eye = on_eye
        await g.polls(1)
        g.plc.sim.unmute()
        await until(lambda: g.plc._state.link_ok, "the link is back", timeout=30)
        records = await g.vehicles_decided(2)
        assert g.flow.lane_status()["loop_faults"] == 0
    # the car ahead is scanned; a link lost during its scan holds the controller disarmed (a safe state), which cuts
    # its scan off (manual: the controller ended it incomplete) unless the scan ended first (clear)
    assert sorted((r.scan is None, r.verdict) for r in records)[1] == (True, Verdict.MANUAL)
    scanned = next(r for r in records if r.scan is not None)
    assert (scanned.verdict, scanned.reason) in ((Verdict.CLEAR, "clear"), (Verdict.MANUAL, "device_fault"),
                                                (Verdict.MANUAL, "scan_incomplete"))


def test_the_example_gantry_maps_the_vehicle_separator_and_check_config_accepts_it() -> None:
    """examples/gantry.toml mapped no vehicle separator although its simulator drives one: the demo lane took a car
    following within loop_gap_s for the trailer of the one ahead (and said so once at start)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "gantry.toml"
    result = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(example)], capture_output=True,
                            text=True, cwd=example.parents[1], timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, f"{example}: ok"), result.stderr
    plc = load_config(example).devices.plc
    assert plc is not None and separator_eye(plc.eyes) == len(plc.eyes) - 1
    assert plc.registers[SEPARATOR].table == "discrete"


@pytest.mark.parametrize("loop_gap_s", [1.0, LOOP_GAP_S], ids=["within-loop-gap", "after-loop-gap"])
async def test_a_car_slipping_out_behind_a_released_car_holds_the_lane_and_is_never_taken_for_it(
        tmp_path, loop_gap_s: float) -> None:
    """The suspect car behind follows the released one through the open barrier, 2 m behind (0.2 s on the exit loop).
    Within loop_gap_s the exit loop took it for the released car's trailer, after it for an unexpected exit: either
    way the lane still listed it waiting at the barrier, so the next release would let the car behind it go. Now the
    released car had one part on the entry loop and the exit loop saw two (or a vehicle the lane had not let go):
    the alarm exit_tailgate names the car behind, the lane is held (no gate, entry red) and decisions are refused
    until a supervisor confirms which cars are still in it; the car's record stays undecided."""
    async with gantry(tmp_path, [SUSPECT, SUSPECT], queue=2, loop_gap_s=loop_gap_s, separator=True) as g:
        first, second = _queue_up(g.sim, 2)  # the separator at the entry tells them apart, as loop_gap_s would not
        g.sim.tailgaters.add(second)
        records = await g.vehicles_decided(2)
        await until(lambda: [v.lead_m for v in g.sim.vehicles] == [g.sim.g.barrier_m - 0.5, g.sim.g.barrier_m - 6.5],
                    "both cars wait at the barrier")
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{records[0].id}/decision", json=RELEASE)
        assert r.status_code == 200, r.text
        await until(lambda: g.sim.passed == [first, second], "both cars left")
        lane = await until(g.flow.lane_status, "the lane held", check=lambda s: s["held_for"] == "exit_tailgate")
        assert lane["missing"] == [records[1].id] and [v["id"] for v in lane["vehicles"]] == [records[1].id]
        alarms = await until(lambda: dict(g.store.standing_alarms()), "the alarm", check=lambda a: "exit_tailgate" in a)
        assert records[1].id in alarms["exit_tailgate"] and "lane_unknown" not in alarms
        await until(lambda: g.sim.values()["entry_light"] == 1 and g.sim.requests["barrier_open_request"] == 0,
                    "the entry light red, the barrier closed")
        assert g.store.get(records[1].id).review is None and g.store.get(records[1].id).verdict is Verdict.SUSPECT
        r = await officer.post(f"/api/cases/{records[1].id}/decision", json=RELEASE)
        assert (r.status_code, r.json()["detail"]) == (409, "exit_tailgate")

        supervisor = await g.client(SUPERVISOR)
        r = await supervisor.post("/api/lane/confirm", json={"vehicles": []})  # it is gone
        assert r.status_code == 200, r.text
        assert r.json()["lane"]["vehicles"] == [] and r.json()["lane"]["unknown"] == ""
        assert "exit_tailgate" not in dict(g.store.standing_alarms())
        await until(lambda: g.sim.values()["entry_light"] == 3, "the entry light green again")


async def test_a_truck_whose_trailer_the_entry_loop_counted_leaves_without_an_exit_tailgate(tmp_path) -> None:
    """A cab and its trailer are two parts on the entry loop and on the exit loop: no alarm, the lane flows."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=2, loop_gap_s=1.0, separator=True) as g:
        truck = g.sim.add_vehicle(10.0, lead_m=-1.5, coupling=(4.0, 6.0))  # 4 m cab, 2 m drawbar, 4 m trailer
        car = g.sim.add_vehicle(4.0, lead_m=-14.0)
        await until(lambda: g.sim.passed == [truck, car], "both left", timeout=60)
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"])
        assert (lane["unknown"], lane["loop_flaps"]["eye_exit"], lane["unexpected_exits"]) == ("", 1, 0)
        assert "exit_tailgate" not in dict(g.store.standing_alarms())


async def test_a_clear_car_whose_scan_a_held_test_loop_delayed_still_leaves_clear(tmp_path) -> None:
    """The rig: the test process's loop held 0.4 s just after a scan started (as a loaded CI machine holds it)
    overflowed the emulator's default 512-line FIFO at 2000 lines/s: the scan ended incomplete and the clear car went
    to `manual`, so a test waiting for it to leave waited in vain. The rig's FIFO does not overflow."""
    async with gantry(tmp_path, [CLEAR]) as g:
        permitted_scan = g.flow._permitted_scan

        async def held_after_the_start(item):  # type: ignore[no-untyped-def]
            acquisition = await permitted_scan(item)
            time.sleep(0.4)  # the loop held: no line is sent meanwhile
            return acquisition
        g.flow._permitted_scan = held_after_the_start
        car, = _queue_up(g.sim, 1)
        record, = await g.vehicles_decided(1)
        assert (record.verdict, record.reason) == (Verdict.CLEAR, "clear")
        await until(lambda: g.sim.passed == [car], "the car left")


async def test_a_truck_standing_with_its_drawbar_over_the_entry_loop_stays_one_vehicle(tmp_path) -> None:
    """The truck stands 1.5 s with its drawbar over the entry loop (the lane ahead queued up to it): the loop is free
    longer than loop_gap_s while the separator, broken by the cab and then the drawbar, never clears. The trailer was
    taken for a new vehicle and counted a separator fault (manual, a phantom place in the lane). The beam broke with
    the cab and stayed broken: one vehicle, its trailer a part, no fault."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        truck_id = g.sim.add_vehicle(10.0, lead_m=-1.5, coupling=(4.0, 6.0))  # 4 m cab, 2 m drawbar, 4 m trailer
        truck = g.sim.vehicles[-1]
        await until(lambda: truck.lead_m >= g.sim.g.eye_entry_m + 4.5, "the drawbar over the entry loop",
                    interval=0.002)
        truck.fixed = True
        await asyncio.sleep(1.5)
        truck.fixed = False
        await until(lambda: g.sim.passed == [truck_id], "the truck left", timeout=60)
        lane = await until(g.flow.lane_status, "the lane empty", check=lambda s: not s["vehicles"] or s["unknown"])
        record, = g.records()
        assert record.verdict is Verdict.CLEAR
        assert (lane["separator_faults"], lane["unknown"], lane["loop_flaps"]["eye_entry"]) == (0, "", 1)


async def test_a_car_that_follows_one_standing_in_a_beam_past_the_loop_is_no_trailer(tmp_path) -> None:
    """The beam 1 m past the entry loop's edge: the first car, queued, stands with its rear off the loop and its body
    across the beam; a second car comes onto the loop 1.5 s later. Loop free longer than loop_gap_s and the beam broken
    since the first car's front: taken for a truck standing with its drawbar over the loop, the second car was the first
    one's trailer (no record, it would leave unscanned with the first). The beam clears between them and breaks again
    while the second car is on the loop, which no coupled trailer does: it is a vehicle of its own, not cleared."""
    async with gantry(tmp_path, [CLEAR, CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.sim.g = g.sim.g.model_copy(update={"vehicle_separator_m": g.sim.g.eye_entry_m + 1.0})
        g.flow.devices.scanner.emulator.line_rate = 40  # 3 s a scan: the first car's verdict comes after it stood
        g.sim.add_vehicle(4.0, lead_m=-1.5)
        car = g.sim.vehicles[-1]
        await until(lambda: car.lead_m - 4.0 > g.sim.g.eye_entry_m + 0.5, "the first car's rear 0.5 m past the loop",
                    interval=0.002)
        car.fixed = True  # queued: its body across the beam, off the loop
        assert g.sim.separator_broken() and not g.sim.loop(g.sim.g.eye_entry_m)
        await asyncio.sleep(1.5)
        g.sim.add_vehicle(4.0, lead_m=g.sim.g.eye_entry_m - 0.5)
        second = g.sim.vehicles[-1]
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the second car on the loop", interval=0.002)
        second.fixed = True  # it stops behind the first (the simulator lets a car drive into a fixed one)
        assert second.lead_m < car.lead_m - car.length_m
        await asyncio.sleep(0.3)
        car.fixed = second.fixed = False  # the queue moves on: the second car keeps 2 m behind the first
        await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), "the second car off the loop", interval=0.002,
                    timeout=30)
        records = await g.vehicles_decided(2)
        lane = g.flow.lane_status()
        assert len(lane["vehicles"]) == 2 or lane["unknown"]
        assert [v["parts"] for v in lane["vehicles"]] == [1, 1][:len(lane["vehicles"])]  # the second car: one part
    assert records[1].verdict is not Verdict.CLEAR


async def test_a_separator_stuck_broken_as_a_car_broke_it_never_lets_the_car_behind_pass_for_its_trailer(
        tmp_path) -> None:
    """The beam sticks broken as the first car breaks it; a second car comes 1.5 s after the first left the entry loop.
    Read as a trailer behind a standing drawbar, the second car would leave unscanned with the first: the beam that
    stays broken after the merged 'trailer' left the loop gives the stuck separator away, and the lane is held."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.sim.add_vehicle(4.0, lead_m=-1.5)
        await until(lambda: g.sim.separator_broken(), "the first car breaks the beam", interval=0.002)
        g.sim.separator_stuck = True
        car = g.sim.vehicles[-1]
        await until(lambda: car.lead_m - 4.0 > g.sim.g.eye_entry_m, "the first car off the entry loop", interval=0.002)
        car.fixed = True  # it waits on the scan zone's far side while the second car comes
        await asyncio.sleep(1.5)
        g.sim.add_vehicle(4.0, lead_m=g.sim.g.eye_entry_m - 0.5)
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the second car on the loop", interval=0.002)
        car.fixed = False
        await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), "the second car off the loop", interval=0.002)
        lane = await until(g.flow.lane_status, "the lane held or the car its own vehicle", timeout=30,
                           check=lambda s: s["unknown"] or len(s["vehicles"]) == 2 or len(g.records()) == 2)
        records = g.records()
        assert lane["unknown"] or len(records) == 2, "the second car was taken for the first one's trailer"
        assert all(r.verdict is not Verdict.CLEAR for r in records[1:])


async def test_the_car_taken_for_a_trailer_behind_a_stuck_beam_is_recorded_before_the_first_car_is_released(
        tmp_path) -> None:
    """The beam sticks broken as the first car breaks it, and the second car, 1.5 s behind, is taken for the first
    one's trailer over a standing drawbar; the first car's scan is still running when the stuck beam gives itself
    away. The first car was then only 'not cleared': an officer released it and the lane flowed again, empty, while
    the second car stood at the barrier with no record, to leave on the next vehicle's release. Now the second car
    joins the lane behind the first as a vehicle of its own, recorded unscanned (manual): the officer's release lets
    the first car go and the lane still holds the second for its own decision."""
    async with gantry(tmp_path, [CLEAR, CLEAR], queue=3, loop_gap_s=1.0, separator=True) as g:
        g.flow.devices.scanner.emulator.line_rate = 15  # 8 s a scan: its verdict comes after the beam's check
        first = g.sim.add_vehicle(4.0, lead_m=-1.5)
        await until(lambda: g.sim.separator_broken(), "the first car breaks the beam", interval=0.002)
        g.sim.separator_stuck = True
        car = g.sim.vehicles[-1]
        await until(lambda: car.lead_m - 4.0 > g.sim.g.eye_entry_m, "the first car off the entry loop", interval=0.002)
        car.fixed = True  # it waits on the scan zone's far side while the second car comes
        await asyncio.sleep(1.5)
        second = g.sim.add_vehicle(4.0, lead_m=g.sim.g.eye_entry_m - 0.5)
        follower = g.sim.vehicles[-1]
        await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), "the second car on the loop", interval=0.002)
        follower.fixed = True  # it stops behind the first (the simulator lets a car drive into a fixed one)
        await asyncio.sleep(0.2)
        car.fixed = follower.fixed = False
        await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), "the second car off the loop", interval=0.002)
        records = await g.vehicles_decided(2)
        scanned, unscanned = sorted(records, key=lambda r: r.scan is None)  # the unscanned one is written first
        assert [(r.verdict, r.scan is None) for r in (scanned, unscanned)] == \
            [(Verdict.MANUAL, False), (Verdict.MANUAL, True)]
        assert [v["id"] for v in g.flow.lane_status()["vehicles"]] == [scanned.id, unscanned.id]
        officer = await g.client(OFFICER)
        r = await officer.post(f"/api/cases/{scanned.id}/decision", json=RELEASE)
        assert r.status_code == 200 and r.json()["lane"]["outcome"] == "open", r.text
        await until(lambda: g.sim.passed == [first], "the first car left", timeout=30)
        lane = await until(g.flow.lane_status, "the second car in the lane",
                           check=lambda s: [v["id"] for v in s["vehicles"]] == [unscanned.id])
        assert lane["vehicles"][0]["waiting_for_officer"] and second not in g.sim.passed


async def test_two_cars_taken_for_trailers_behind_a_stuck_beam_are_each_recorded(tmp_path) -> None:
    """The beam sticks broken as the first car breaks it; two cars follow, each 1.5 s behind the one ahead, and both
    are taken for its trailers over a standing drawbar (3 parts). When the stuck beam gave itself away only one was
    recorded as a vehicle and the first car kept 2 parts: 3 cars, 2 records, and the third could leave with the first
    (2 parts on the exit loop, no tailgate) or on another vehicle's decision. Each is a vehicle of its own now."""
    async with gantry(tmp_path, [CLEAR, CLEAR, CLEAR], queue=4, loop_gap_s=1.0, separator=True) as g:
        g.flow.devices.scanner.emulator.line_rate = 15  # 8 s a scan: its verdict comes after the beam's checks
        g.sim.add_vehicle(4.0, lead_m=-1.5)
        await until(lambda: g.sim.separator_broken(), "the first car breaks the beam", interval=0.002)
        g.sim.separator_stuck = True
        car = g.sim.vehicles[-1]
        await until(lambda: car.lead_m - 4.0 > g.sim.g.eye_entry_m, "the first car off the entry loop", interval=0.002)
        car.fixed = True
        for n in (2, 3):
            await asyncio.sleep(1.5)
            g.sim.add_vehicle(4.0, lead_m=g.sim.g.eye_entry_m - 0.5)
            follower = g.sim.vehicles[-1]
            await until(lambda: g.sim.loop(g.sim.g.eye_entry_m), f"car {n} on the loop", interval=0.002)
            follower.fixed = True
            await asyncio.sleep(0.2)
            follower.fixed = False
            await until(lambda: not g.sim.loop(g.sim.g.eye_entry_m), f"car {n} off the loop", interval=0.002)
            follower.fixed = True  # it waits behind the first
        records = await g.vehicles_decided(3)
        assert [v["parts"] for v in g.flow.lane_status()["vehicles"]] == [1, 1, 1]
        assert all(r.verdict is not Verdict.CLEAR for r in records)
