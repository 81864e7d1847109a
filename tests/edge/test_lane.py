"""The gantry lane's state: first in, first out; nothing leaves without a clear verdict or a decision;
a link loss or a restart withdraws every way out not yet taken."""

from __future__ import annotations

import json

from edge.stations import statefile
from edge.stations.lane import FILE_NAME, Lane, Loop, Separator


def _lane(tmp_path, capacity: int = 2) -> Lane:
    return Lane(capacity, tmp_path / FILE_NAME)


def test_only_the_first_vehicle_leaves_and_only_by_the_gate_opened_for_it(tmp_path) -> None:
    lane = _lane(tmp_path)
    a, b = lane.arrived("a"), lane.arrived("b")
    lane.judged(a, "suspect")
    lane.judged(b, "clear")
    assert lane.full and (a.way, b.way, b.by) == (None, "release", "verdict")
    assert lane.left("release") is None and lane.unexpected_exits == 1  # nobody was let go
    lane.decided(a, "search_bay", "0A1B2C3D")
    assert lane.opened(a, "search_bay")
    assert lane.left("release") is None and [v.id for v in lane.vehicles] == ["a", "b"]
    assert lane.left("search_bay") is a and lane.head is b and not lane.full


def test_a_link_loss_withdraws_every_way_out_but_a_vehicle_already_through_its_gate_still_leaves(tmp_path) -> None:
    lane = _lane(tmp_path)
    a, b = lane.arrived("a"), lane.arrived("b")
    lane.judged(a, "clear")
    lane.opened(a, "release")
    lane.judged(b, "clear")
    lane.link_lost("no answer")
    assert [(v.way, v.leaving, v.waiting_for_officer) for v in lane.vehicles] == [(None, False, True)] * 2
    assert "link was lost" in b.problem
    assert lane.left("release") is a  # it was under the open barrier, which the PLC keeps open over it
    assert lane.left("release") is None  # b was never let go


def test_a_gate_opened_after_its_way_was_withdrawn_does_not_mark_the_vehicle_leaving(tmp_path) -> None:
    lane = _lane(tmp_path)
    a = lane.arrived("a")
    lane.judged(a, "clear")
    lane.link_lost("no answer")  # while the barrier's read-back was under way
    assert not lane.opened(a, "release") and (a.way, a.leaving, a.waiting_for_officer) == (None, False, True)
    assert lane.left("release") is a  # it drove through the barrier standing open over it


def test_the_lane_outlives_the_daemon_and_every_vehicle_in_it_waits_for_an_officer_again(tmp_path) -> None:
    lane = _lane(tmp_path)
    a, b = lane.arrived("a"), lane.arrived("b")
    lane.judged(a, "suspect")
    lane.judged(b, "clear")
    again = _lane(tmp_path)
    assert [(v.id, v.verdict, v.way) for v in again.vehicles] == [("a", "suspect", None), ("b", "clear", None)]
    assert all("restarted" in v.problem for v in again.vehicles)
    assert again.status()["state"] == "held"


def test_an_unreadable_lane_file_holds_the_lane_and_is_kept_as_it_is(tmp_path) -> None:
    """Vehicles the file held may still be in the lane: it is held (full, nothing opened) and says why, naming the
    file; the file is not overwritten, so a restart before a technician removed it is held again."""
    file = tmp_path / FILE_NAME
    for text in ("{not json", "null", "5", json.dumps({"vehicles": None}), json.dumps({"vehicles": 5}), "{}",
                 json.dumps({"vehicles": [{"since": "x"}, {"id": "a", "since": "t"}]}),
                 json.dumps({"vehicles": [7, {"id": "a", "since": "t"}]}),
                 json.dumps({"vehicles": [{"id": "a", "since": "t", "verdict": 3}]})):
        file.write_text(text)
        lane = _lane(tmp_path)
        status = lane.status()
        assert lane.full and status["state"] == "held", text
        assert status["detail"].startswith(f"lane held: {file} ") and "does not know" in status["detail"], text
        lane.judged(lane.arrived("b"), "clear")
        assert file.read_text() == text
    file.unlink()
    assert not _lane(tmp_path).full and _lane(tmp_path).unknown == ""


def test_a_confirmed_lane_keeps_the_unreadable_file_beside_and_writes_the_vehicles_it_knows(tmp_path, monkeypatch) -> None:
    file = tmp_path / FILE_NAME
    file.write_text("{not json")
    lane = _lane(tmp_path)
    lane.judged(lane.arrived("b"), "suspect")  # came in while held (it ran the red light)
    assert lane.confirm_known() is None and lane.unknown == ""
    assert [p.read_text() for p in tmp_path.glob("lane.unreadable-*.json")] == ["{not json"]
    again = _lane(tmp_path)
    assert [(v.id, v.verdict) for v in again.vehicles] == [("b", "suspect")] and again.unknown == ""
    assert again.confirm_known() is None and len(list(tmp_path.glob("lane.unreadable-*.json"))) == 1  # nothing held

    file.write_text("null")
    held = _lane(tmp_path)
    held.judged(held.arrived("c"), "suspect")

    def refused(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(statefile, "save", refused)  # writing the new file fails (disk full)
    problem = held.confirm_known()
    assert problem is not None and problem.startswith(f"the lane file {file} could not be replaced")
    assert held.unknown and held.full and file.read_text() == "null"
    monkeypatch.undo()
    assert _lane(tmp_path).unknown  # a restart is held again: the vehicles the file may hide are not forgotten


def test_health_says_why_the_lane_is_held(tmp_path) -> None:
    lane = _lane(tmp_path, capacity=2)
    assert lane.status()["detail"] == "lane flowing: 0 of 2 places taken"
    a = lane.arrived("a")
    lane.judged(a, "manual")
    assert lane.status()["state"] == "waiting"
    a.mono -= 180
    lane.judged(lane.arrived("b"), "suspect")
    status = lane.status()
    assert status["state"] == "held"
    assert status["detail"] == "lane held: 2 vehicles waiting for an officer (oldest 3 min)"


def test_a_loop_blocked_again_within_the_gap_is_the_same_vehicle_and_a_blip_is_none() -> None:
    loop = Loop(gap_s=0.5, occupied_s=0.2)
    assert loop.entered(10.0)  # a truck's cab
    assert loop.cleared(11.0) and loop.still_free(11.0)
    assert not loop.entered(11.3)  # its trailer: a flap
    assert not loop.still_free(11.0)
    assert loop.cleared(13.0) and loop.flaps == 1
    assert loop.entered(14.0)  # the next vehicle, 1 s behind
    assert loop.cleared(16.0)
    assert loop.entered(20.0) and not loop.cleared(20.05)  # a blip: no vehicle passed
    assert loop.flaps == 2


def test_an_exit_tailgate_hold_outlives_the_daemon_and_a_confirm_takes_out_only_the_missing(tmp_path) -> None:
    """A vehicle that may have left undecided holds the lane (its file says so, so a restart is held again); the
    supervisor's confirm takes the missing vehicle out of the lane, never another, and the file flows again."""
    lane = _lane(tmp_path, capacity=3)
    for vid in "abc":
        lane.arrived(vid)
    lane.hold("the barrier's loop saw 2 vehicle parts leave with vehicle z", ["a"])
    assert lane.full and (lane.held_for, lane.missing) == ("exit_tailgate", ["a"])
    again = _lane(tmp_path, capacity=3)
    assert (again.held_for, again.missing, [v.id for v in again.vehicles]) == ("exit_tailgate", ["a"], ["a", "b", "c"])
    assert again.unknown.startswith("the barrier's loop saw 2") and again.full
    assert again.confirm_known(frozenset({"a", "b"})) is None  # b was never missing: it stays
    assert ([v.id for v in again.vehicles], again.unknown, again.held_for, again.missing) == (["b", "c"], "", "", [])
    after = _lane(tmp_path, capacity=3)
    assert [v.id for v in after.vehicles] == ["b", "c"] and not after.unknown and not after.full
    assert list(tmp_path.glob("lane.unreadable-*")) == []  # the file was readable: nothing kept for a technician


def test_a_loop_counts_the_parts_of_the_vehicle_on_it() -> None:
    """A cab and its trailer: two occupancies within the gap are one vehicle of two parts; the next vehicle starts
    at one."""
    loop = Loop(gap_s=0.5, occupied_s=0.1)
    assert loop.entered(0.0) and loop.cleared(1.0) and not loop.entered(1.2) and loop.parts == 2
    assert loop.cleared(2.0) and loop.entered(3.0) and loop.parts == 1


def test_a_separator_broken_by_a_vehicles_front_ahead_of_the_loop_is_no_contradiction() -> None:
    """A beam mounted ahead of the entry loop is broken by the vehicle's front before the loop sees it: broken all the
    last gap_s, yet seen clear within the lead allowed (separator_wait_s) before them, it is no stuck beam."""
    separator = Separator()
    separator.edge(False, 0.0)
    separator.edge(True, 9.6)  # the front breaks the beam 0.4 s before the loop sees it at 10.0
    assert separator.broken_before(0.0, 10.0, 0.3) != ""
    assert separator.broken_before(0.0, 10.0, 0.3, lead_s=0.5) == ""


def test_a_loop_told_a_drawbar_stood_over_it_keeps_the_trailer_after_a_long_gap() -> None:
    loop = Loop(gap_s=0.5, occupied_s=0.1)
    assert loop.entered(0.0) and loop.cleared(1.0)
    assert not loop.entered(3.0, coupled=True) and (loop.parts, loop.flaps, loop.since) == (2, 1, 0.0)
