"""A vehicle's history on the hub (issue 19), both backends: its passes by identity with their outcome, and
its references (clean or searched-nothing-found passes whose scan the hub holds, newest first), over the API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_sync.hub import api_auth
from central_sync.hub.api import create_app
from central_sync.hub.history import pass_outcome, report_outcome
from central_sync.hub.store import HubStore
from central_sync.schema import ContainerPass, Identity, InspectionRecord, ItemKind, Verdict
from edge.identity import fuse
from history_kit import NOW, PLATE, ingest, vehicle_pass


@pytest.fixture
async def http(store: HubStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    token, line = api_auth.new_token("gate-2")
    (tmp_path / "tokens").write_text(line + "\n")
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def scan(n: int) -> bytes:
    return f"scan file {n}".encode() * 50


def seed(store: HubStore) -> dict[str, str]:
    """Six passes of one plate and one of another; the scans of all but the newest clean one are held."""
    recs = {"cleared_new": vehicle_pass(1, Verdict.CLEAR, 1, scan(1)),
            "seized": vehicle_pass(2, Verdict.SUSPECT, 2, scan(2), review="threat_confirmed"),
            "false_alarm": vehicle_pass(3, Verdict.SUSPECT, 10, scan(3), review="false_alarm"),
            "manual_open": vehicle_pass(4, Verdict.MANUAL, 12, scan(4)),
            "cleared_old": vehicle_pass(5, Verdict.CLEAR, 400, scan(5)),
            "no_scan": vehicle_pass(6, Verdict.CLEAR, 3, None),
            "other": vehicle_pass(7, Verdict.CLEAR, 1, scan(7), plate="AB 1234")}
    held = {hashlib.sha256(scan(n)).hexdigest(): scan(n) for n in (2, 3, 4, 5, 7)}
    held[hashlib.sha256(scan(1)).hexdigest()] = scan(1)
    ingest(store, list(recs.values()), held)
    return {name: r.id for name, r in recs.items()}


async def history(http: httpx.AsyncClient, kind: str, value: str, **params: Any) -> dict:
    resp = await http.get(f"/api/history/{kind}/{value}",
                          params={"since": (NOW - timedelta(days=365)).isoformat(), **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_passes_newest_first_with_their_outcome(store: HubStore, http: httpx.AsyncClient) -> None:
    ids = seed(store)
    got = await history(http, "plate", "粤ZA123港")  # written without the middle dot: the same plate
    assert [p["record_id"] for p in got["passes"]] == [ids[n] for n in (
        "cleared_new", "seized", "no_scan", "false_alarm", "manual_open", "cleared_old")]
    assert [p["outcome"] for p in got["passes"]] == ["cleared", "open", "cleared", "cleared", "open", "cleared"]
    assert ids["other"] not in {p["record_id"] for p in got["passes"]}


async def test_references_are_recent_clean_passes_with_a_held_scan(store: HubStore, http: httpx.AsyncClient) -> None:
    ids = seed(store)
    got = await history(http, "plate", PLATE)
    # not the threat confirmed one, nor the open manual one, nor the one without a scan, nor the 400-day-old one
    assert [p["record_id"] for p in got["references"]] == [ids["cleared_new"], ids["false_alarm"]]
    assert got["references"][0]["scan_sha256"] == hashlib.sha256(scan(1)).hexdigest()
    one = await history(http, "plate", PLATE, count=1)
    assert [p["record_id"] for p in one["references"]] == [ids["cleared_new"]]
    image = await http.get(f"/api/images/{one['references'][0]['scan_sha256']}")
    assert image.status_code == 200 and image.content == scan(1)
    assert (await history(http, "plate", "ZZ 9999"))["references"] == []


async def test_a_reference_needs_the_scan_on_the_hub(store: HubStore, http: httpx.AsyncClient) -> None:
    rec = vehicle_pass(1, Verdict.CLEAR, 1, scan(1))
    ingest(store, [rec])  # the record arrived, its image not yet
    got = await history(http, "plate", PLATE)
    assert [p["record_id"] for p in got["passes"]] == [rec.id] and got["references"] == []


async def test_a_pass_whose_read_of_the_identity_is_in_conflict_is_no_reference(store: HubStore,
                                                                               http: httpx.AsyncClient) -> None:
    """Another vehicle's record carries the plate as a second plate of one jurisdiction (edge.identity flagged both:
    one is misread): its pass was this plate's newest reference. It stays one of the plate's passes (its outcome
    counts), marked `conflict`, and is never a reference."""
    own = vehicle_pass(1, Verdict.CLEAR, 10, scan(1))
    other = vehicle_pass(2, Verdict.CLEAR, 1, scan(2), plate="粤Z·B123港")
    other = other.model_copy(update={"identities": fuse([*other.identities,
                                                         Identity(kind="plate", value=PLATE, source="cam-rear")])})
    assert all(i.conflict for i in other.identities)
    ingest(store, [own, other], {hashlib.sha256(scan(n)).hexdigest(): scan(n) for n in (1, 2)})
    got = await history(http, "plate", PLATE)
    assert [p["record_id"] for p in got["references"]] == [own.id]
    assert [(p["record_id"], p["conflict"]) for p in got["passes"]] == [(other.id, True), (own.id, False)]

async def test_history_is_kept_by_vehicle_identities_only(store: HubStore, http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/history/badge/1234")
    assert resp.status_code == 422 and "not by 'badge'" in resp.text
    assert (await http.get("/api/history/plate/AB1", headers={"Authorization": "Bearer nope"})).status_code == 401


def test_a_search_report_decides_the_outcome() -> None:
    officer, supervisor = {"badge": "1", "role": "officer"}, {"badge": "2", "role": "supervisor"}
    assert report_outcome([]) is None
    assert pass_outcome({"verdict": "suspect", "search_reports": [{"version": 1, "outcome": "nothing_found"}]}) \
        == "nothing_found"
    seizure = {"version": 2, "outcome": "seizure", "officer": officer, "countersigned": supervisor}
    assert pass_outcome({"verdict": "clear", "search_reports": [{"version": 1, "outcome": "nothing_found"}, seizure]}) \
        == "seizure"
    assert pass_outcome({"verdict": "suspect", "search_reports": [{**seizure, "countersigned": None}]}) == "open"
    # countersigned by its own signer, or by an officer: not final (as the hub's records.search_outcome)
    assert pass_outcome({"verdict": "suspect", "search_reports": [{**seizure, "countersigned": officer}]}) == "open"
    assert pass_outcome({"verdict": "suspect", "search_reports": [
        {**seizure, "officer": supervisor, "countersigned": supervisor}]}) == "open"
    assert pass_outcome({"verdict": "suspect", "review": {"outcome": "override"}}) == "open"
    assert pass_outcome({"verdict": "manual", "review": {"outcome": "cleared"}}) == "cleared"


BOX = "CSQU3054383"


def box_pass(seq: int, number: str, days_ago: float, n: int, size_type: str | None = "45G1", empty: bool | None = True,
             verdict: Verdict = Verdict.CLEAR, review: str | None = None, width: int = 64) -> InspectionRecord:
    """A container's pass read by its number, with its size/type code and declared-empty flag."""
    rec = vehicle_pass(seq, verdict, days_ago, scan(n), review=review, plate=number, kind="container")
    return rec.model_copy(update={"kind": ItemKind.CONTAINER, "container": ContainerPass(
        size_type=size_type, declared_empty=empty, declaration=f"D{seq}"),
        "scan": rec.scan.model_copy(update={"shape": (900, width)}) if rec.scan else None})


def seed_boxes(store: HubStore) -> dict[str, str]:
    """BOX's own passes (one clean, one seized) and other containers: 45G1 empty, loaded, seized, other type,
    another gantry's width, too old, and a 45G1 empty one whose scan the hub does not hold."""
    recs = {"own": box_pass(1, BOX, 20, 1, empty=False),
            "own_seized": box_pass(2, BOX, 5, 2, verdict=Verdict.SUSPECT, review="threat_confirmed"),
            "empty_new": box_pass(3, "MSCU1234565", 1, 3),
            "empty_old": box_pass(4, "TGHU9876540", 30, 4),
            "empty_searched": box_pass(5, "OOLU1111110", 2, 5, verdict=Verdict.SUSPECT, review="threat_confirmed"),
            "loaded": box_pass(6, "MAEU2222220", 1, 6, empty=False),
            "other_type": box_pass(7, "CMAU3333330", 1, 7, size_type="22G1"),
            "other_width": box_pass(8, "HLXU4444440", 1, 8, width=128),
            "too_old": box_pass(9, "EGHU5555550", 400, 9),
            "not_held": box_pass(10, "YMLU6666660", 1, 10),
            "undeclared": box_pass(11, "ZIMU7777770", 1, 11, empty=None)}
    ingest(store, list(recs.values()), {hashlib.sha256(scan(n)).hexdigest(): scan(n) for n in range(1, 12) if n != 10})
    return {name: r.id for name, r in recs.items()}


async def test_a_container_also_gets_clean_empty_passes_of_its_size_type(store: HubStore,
                                                                        http: httpx.AsyncClient) -> None:
    ids = seed_boxes(store)
    got = await history(http, "container", "CSQU 305438 3")
    assert [(p["record_id"], p["basis"]) for p in got["references"]] == [
        (ids["own"], "same_vehicle"), (ids["empty_new"], "same_type_empty"), (ids["empty_old"], "same_type_empty")]
    assert got["references"][1]["size_type"] == "45G1" and got["references"][1]["declared_empty"] is True
    assert ids["empty_new"] not in {p["record_id"] for p in got["passes"]}  # not this container's pass
    bounded = await history(http, "container", BOX, count=1, type_count=1)
    assert [p["basis"] for p in bounded["references"]] == ["same_vehicle", "same_type_empty"]
    assert (await history(http, "container", BOX, type_count=0))["references"] == got["references"][:1]
    # the type asked for wins over the container's own; another gantry's width gets that gantry's references
    asked = await history(http, "container", BOX, size_type="22G1")
    assert [p["record_id"] for p in asked["references"]][1:] == [ids["other_type"]]
    wide = await history(http, "container", BOX, detector_px=128)
    assert [p["record_id"] for p in wide["references"]][1:] == [ids["other_width"]]
    assert (await http.get(f"/api/history/container/{BOX}", params={"size_type": "45g1"})).status_code == 422
    # a plate's history never borrows another vehicle's passes
    assert all(p["basis"] == "same_vehicle" for p in (await history(http, "plate", PLATE))["references"])


async def test_a_container_without_a_known_type_gets_its_own_references_only(store: HubStore,
                                                                           http: httpx.AsyncClient) -> None:
    ids = seed_boxes(store)
    ingest(store, [box_pass(20, "TCNU8888880", 3, 20, size_type=None)], {hashlib.sha256(scan(20)).hexdigest(): scan(20)})
    got = await history(http, "container", "TCNU8888880")
    assert [p["basis"] for p in got["references"]] == ["same_vehicle"]
    # a container never seen before, its type asked for by the station: references of its type only
    new = await history(http, "container", "FCIU9999990", size_type="45G1", detector_px=64)
    assert new["passes"] == [] and [p["record_id"] for p in new["references"]] == [ids["empty_new"], ids["empty_old"]]
    unknown_width = await history(http, "container", "FCIU9999990", size_type="45G1", type_count=3)  # the station checks the width
    assert {ids["empty_new"], ids["empty_old"], ids["other_width"]} == {p["record_id"] for p in unknown_width["references"]}
