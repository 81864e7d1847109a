"""A vehicle's history at the station (issue 19): references fetched from a real hub (HTTP, SQLite) while the
vehicle is scanned, the bounded cache, the station without the hub ("no history", never an error), and the
comparison carried by the record to the hub."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn

from central_sync import protocol as p
from central_sync.devtools import free_port
from central_sync.hub import api_auth
from central_sync.hub.api import create_app
from central_sync.hub.history import Pass
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore, open_store
from central_sync.schema import ContainerPass, History, Identity, InspectionRecord, ItemKind, Verdict
from edge.config import HistorySection
from edge.history import (CONTAINER_PARTS, HistoryCache, VehicleHistory, container_pass, history_facts, hub_client,
                          open_history)
from edge.store import Store
from gantry_station import gantry, vehicle_scan
from history_kit import PLATE, ingest, vehicle_pass
from models.history.compare import overlap
from models.scan import Scan
from models.training.portal import PortalSpec
from models.training.portal.passes import Pass as PortalPass, portal_pass
from polling import until

VAN = PortalSpec(vehicle="van", suspect=False)
PLATE_READ = [Identity(kind="plate", value=PLATE, source="cam-front")]


@asynccontextmanager
async def hub_serving(store: HubStore, tmp_path: Path) -> AsyncIterator[HistorySection]:
    """The hub's API on a free port; the station's history config with its token."""
    token, line = api_auth.new_token("gate-2")
    (tmp_path / "tokens").write_text(line + "\n")
    (tmp_path / "station-token").write_text(token + "\n")
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, "hub API up", timeout=10)
        yield HistorySection(hub_url=f"http://127.0.0.1:{port}", token_file=tmp_path / "station-token",
                             max_age_days=3650, timeout_s=60.0, compare_budget_s=120.0)  # never a race on a busy machine
    finally:
        server.should_exit = True
        await task


def seeded_hub(tmp_path: Path) -> tuple[HubStore, Scan, str]:
    """A hub holding a cleared earlier pass of the van (with its scan) and a newer seizure-free manual one."""
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    reference = portal_pass(2, PortalPass(0), VAN)
    data = reference.to_bytes()
    clean = vehicle_pass(1, Verdict.CLEAR, 30, data)
    ingest(store, [clean, vehicle_pass(2, Verdict.MANUAL, 3, None)], {hashlib.sha256(data).hexdigest(): data})
    return store, reference, clean.id


async def fetched(history: VehicleHistory, identities: list[Identity]) -> None:
    history.prefetch(identities)
    await asyncio.gather(*history._fetches.values())


async def test_references_arrive_before_the_scan_ends_and_the_record_carries_the_comparison(tmp_path: Path) -> None:
    hub, _, ref_id = seeded_hub(tmp_path)
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        history = open_history(config, tmp_path / "station", client)
        await fetched(history, PLATE_READ)
        found = history.found(PLATE_READ)
        assert found is not None and found.source == "hub"
        assert [r.record_id for r in found.references] == [ref_id] and len(found.passes) == 2
        assert history_facts(found.passes) == {"history.passes": 2, "history.seizures": 0,
                                               "history.last_outcome": "open"}
        current = portal_pass(2, PortalPass(2, changes=("added_steel",)), VAN)
        result = await history.judge(PLATE_READ, current)
    assert result.status == "compared" and result.reference_ids == [ref_id]
    truth = current.meta["changes"][0]
    assert result.regions and result.regions[0].kind == truth["kind"]
    assert {"residual", "stretch_min", "stretch_max"} <= set(result.registration)
    assert synced(tmp_path, hub, current.to_bytes(), result) == result  # the record carries it to the hub


def synced(tmp_path: Path, hub: HubStore, scan: bytes, result: History) -> History:
    """The history as the hub holds it once the station added it to a record: stored in the station's database, then
    the record and its update ingested as the station's outbox sends them."""
    station = Store(tmp_path / "station-db", station="gate-1").open()
    rec = station.commit(vehicle_pass(9, Verdict.CLEAR, 0, scan), scan_stored=False)
    stored = station.add_history(rec.id, result)
    assert station.get(rec.id) == stored and stored.history == result
    kind, payload = station.conn.execute("SELECT kind, payload FROM outbox WHERE record_id = ? ORDER BY id DESC",
                                         (rec.id,)).fetchone()
    station.close()
    ingest(hub, [rec])
    Ingestor(hub, "hub-h", lambda t, b: None).handle(
        [(p.topic("gate-1", kind), p.encode_envelope("gate-1", kind, 77, rec.seq, rec.id, bytes(payload), 0.0))])
    return History.model_validate(json.loads(hub.records("WHERE id = ?", (rec.id,), 1, 0)[0][0])["history"])


async def test_with_two_references_the_second_corroborates_the_changes_of_the_newest(tmp_path: Path) -> None:
    """The hub holds two cleared passes of the van: both arrive prepared, the record names both, and a change
    in the current pass is reported because both references show it."""
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    passes = [portal_pass(2, PortalPass(k), VAN) for k in (0, 1)]
    scans = [p.to_bytes() for p in passes]
    older, newer = (vehicle_pass(n + 1, Verdict.CLEAR, days, scans[n], shape=passes[n].shape)
                    for n, days in ((0, 30), (1, 10)))
    ingest(store, [older, newer], {hashlib.sha256(d).hexdigest(): d for d in scans})
    async with hub_serving(store, tmp_path) as config, hub_client(config) as client:
        assert config.references == 2
        history = open_history(config, tmp_path / "station", client)
        await fetched(history, PLATE_READ)
        found = history.found(PLATE_READ)
        assert found is not None and [r.record_id for r, _ in found.prepared] == [newer.id, older.id]
        current = portal_pass(2, PortalPass(2, changes=("added_steel",)), VAN)
        result = await history.judge(PLATE_READ, current)
    assert result.status == "compared" and result.reference_ids == [newer.id, older.id]
    assert result.reference_scan == newer.scan.sha256  # type: ignore[union-attr]  (the one shown beside the scan)
    truth = current.meta["changes"][0]
    assert [r.kind for r in result.regions if overlap(tuple(r.box), tuple(truth["box"]))] == [truth["kind"]]
    assert "uncorroborated" in result.suppressed and older.id in result.detail


async def test_without_the_hub_a_pass_has_no_history_and_is_not_an_error(tmp_path: Path) -> None:
    config = HistorySection(hub_url=f"http://127.0.0.1:{free_port()}", timeout_s=2.0)  # nothing listens there
    async with hub_client(config) as client:
        history = open_history(config, tmp_path, client)
        await fetched(history, PLATE_READ)
        result = await history.judge(PLATE_READ, portal_pass(2, PortalPass(1), VAN))
    assert result.status == "no_history" and "the hub did not answer" in result.detail
    assert (result.code, result.values) == ("hub_unavailable", {})  # the officer reads why, in the screen's language
    hub = open_store(str(tmp_path / "hub.db"))
    hub.migrate()
    assert synced(tmp_path, hub, b"a scan", result).code == "hub_unavailable"  # stored and synced with the record
    assert history.counts["hub_failed"] == 1 and history.counts["no_history"] == 1
    assert history_facts(None) == {"history.passes": None, "history.seizures": None, "history.last_outcome": None}


async def test_a_scan_that_ends_before_the_answer_has_no_history(tmp_path: Path) -> None:
    hub, _, _ = seeded_hub(tmp_path)
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        history = open_history(config, tmp_path / "station", client)
        history.prefetch(PLATE_READ)  # the scan ends at once: the fetch has not finished
        result = await history.judge(PLATE_READ, portal_pass(2, PortalPass(1), VAN))
        assert (result.status, result.code) == ("no_history", "not_arrived")
        unread = await history.judge([Identity(kind="badge", value="B-7")], portal_pass(2, PortalPass(1), VAN))
        assert (unread.code, unread.detail) == ("no_identity", "no plate, container number or UHF tag TID of the "
                                                "vehicle was read")
        await asyncio.gather(*history._fetches.values())


async def test_the_cache_answers_when_the_hub_has_gone(tmp_path: Path) -> None:
    hub, _, ref_id = seeded_hub(tmp_path)
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        await fetched(open_history(config, tmp_path / "station", client), PLATE_READ)
    async with hub_client(config) as client:  # the hub's port is closed now
        again = open_history(config, tmp_path / "station", client)
        await fetched(again, [Identity(kind="plate", value="粤ZA123港")])  # the same plate, written otherwise
        result = await again.judge(PLATE_READ, portal_pass(2, PortalPass(1), VAN))
    assert again.counts["hub_failed"] == 1 and again.counts["from_cache"] == 1
    assert result.status == "compared" and result.reference_ids == [ref_id]


def test_the_cache_is_bounded_by_count_and_bytes_least_recently_used_first(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path / "history", max_entries=3, max_bytes=10_000)
    answer: dict = {"passes": [], "references": []}
    for key in "abc":
        assert cache.put(key, answer, {key * 64: b"x" * 1000})
    assert cache.get("a") is not None  # a is used again: b is now the oldest
    cache.put("d", answer, {"d" * 64: b"x" * 1000})
    assert cache.get("b") is None and cache.entries == 3 and cache.counts["evicted"] == 1
    cache.put("e", answer, {"e" * 64: b"x" * 7000})  # past the bytes: the oldest go until it fits
    assert cache.size_bytes <= 10_000 and cache.get("e") is not None and cache.get("c") is None
    assert not cache.put("f", answer, {"f" * 64: b"x" * 20_000}) and cache.counts["refused"] == 1
    held = sorted(d.name for d in (tmp_path / "history").iterdir())
    reopened = HistoryCache(tmp_path / "history", max_entries=3, max_bytes=10_000)
    assert sorted(reopened._sizes) == held and reopened.size_bytes == cache.size_bytes


@pytest.mark.parametrize("outcomes,expected", [
    (["cleared", "seizure", "nothing_found"], (3, 1, "cleared")),
    ([], (0, 0, None)),
])
def test_history_facts(outcomes: list[str], expected: tuple) -> None:
    passes = [Pass(f"r{i}", "gate-1", 100.0 - i, "vehicle", "clear", o, None, None, None)  # type: ignore[arg-type]
              for i, o in enumerate(outcomes)]
    facts = history_facts(passes)
    assert (facts["history.passes"], facts["history.seizures"], facts["history.last_outcome"]) == expected


TID = "E2801160200073F1A2B3C4D5"


async def test_the_gantry_compares_after_the_verdict_and_the_record_carries_it(tmp_path: Path) -> None:
    hub = open_store(str(tmp_path / "hub.db"))
    hub.migrate()
    data = vehicle_scan(False).to_bytes()
    earlier = vehicle_pass(1, Verdict.CLEAR, 10, data, plate=TID, kind="rfid_tid")
    ingest(hub, [earlier], {hashlib.sha256(data).hexdigest(): data})
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        history = open_history(config, tmp_path / "station-history", client)
        async with gantry(tmp_path, [vehicle_scan(False)], history=history) as g:
            tag = [Identity(kind="rfid_tid", value=TID, source="uhf")]
            g.flow.tags._present[("uhf", TID)] = tag  # in the reader's field as the vehicle approaches
            await fetched(history, tag)  # read on approach: its answer is in before the scan (no race on load)
            g.sim.add_vehicle(4.0, lead_m=-1.5)
            [record] = await g.vehicles_decided(1)
            assert record.verdict == Verdict.CLEAR and record.history is None  # the verdict never waits for it
            rec = await until(lambda: g.store.get(record.id), "the comparison on the record",
                              check=lambda r: r.history is not None, timeout=60)
    assert rec.verdict == Verdict.CLEAR and rec.history.status == "compared"
    assert rec.history.reference_ids == [earlier.id] and rec.history.identity == f"rfid_tid:{TID}"
    assert history.counts["from_hub"] == 1 and history._fetches == {}
    metrics = g.flow.parts.metrics.registry
    assert metrics.get_sample_value("edge_history_events_total", {"event": "compared"}) == 1
    assert metrics.get_sample_value("edge_history_events_total", {"event": "stored"}) == 1
    assert metrics.get_sample_value("edge_history_cache_entries") == 1


async def test_the_gantry_without_the_hub_records_no_history(tmp_path: Path) -> None:
    config = HistorySection(hub_url=f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    async with hub_client(config) as client:
        history = open_history(config, tmp_path / "station-history", client)
        async with gantry(tmp_path, [vehicle_scan(True)], history=history) as g:
            g.flow.tags._present[("uhf", TID)] = [Identity(kind="rfid_tid", value=TID, source="uhf")]
            g.sim.add_vehicle(4.0, lead_m=-1.5)
            [record] = await g.vehicles_decided(1)
            rec = await until(lambda: g.store.get(record.id), "the history note on the record",
                              check=lambda r: r.history is not None, timeout=60)
    assert rec.verdict == Verdict.SUSPECT and rec.history.status == "no_history"


async def test_fetches_of_reads_no_record_kept_do_not_pile_up(tmp_path: Path) -> None:
    from edge.history import MAX_FETCHES

    history = open_history(HistorySection(), tmp_path, None)  # no hub: each fetch asks the cache only
    for n in range(MAX_FETCHES + 1):
        await fetched(history, [Identity(kind="plate", value=f"AB {n:04d}")])
    assert len(history._fetches) == MAX_FETCHES + 1
    history.prefetch([Identity(kind="plate", value="ZZ 1")])
    assert len(history._fetches) == 1 and history.counts["from_cache"] == 0
    assert history.cache.counts["misses"] == MAX_FETCHES + 1


async def test_a_damaged_cache_entry_is_no_history_counted(tmp_path: Path) -> None:
    from edge.history import identity_key

    key = identity_key("plate", PLATE)
    HistoryCache(tmp_path / "history", 10, 10**6).put(key, {"passes": [{"record_id": "x"}]}, {})  # not a pass
    history = open_history(HistorySection(), tmp_path, None)
    await fetched(history, PLATE_READ)
    result = await history.judge(PLATE_READ, portal_pass(2, PortalPass(1), VAN))
    assert result.status == "no_history" and history.counts["cache_unreadable"] == 1


BOX = PortalSpec(vehicle="tractor_20ft", suspect=False, declared_empty=True, cargo="empty", pixel_mm=10.0)
BOX_READ = [Identity(kind="container", value="CSQU3054383", source="cam-top")]


def box_hub(tmp_path: Path) -> tuple[HubStore, str]:
    """A hub holding the container's own earlier pass (seized: no reference, its size/type 22G1 recorded) and a
    cleared pass of another 22G1 container declared empty (its scan held)."""
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    other = portal_pass(5, PortalPass(0), BOX)
    data = other.to_bytes()

    def box(seq: int, number: str, verdict: Verdict, scan: bytes, review: str | None = None) -> InspectionRecord:
        rec = vehicle_pass(seq, verdict, 10 + seq, scan, review=review, plate=number, kind="container")
        return rec.model_copy(update={"kind": ItemKind.CONTAINER, "scan": rec.scan.model_copy(
            update={"shape": other.shape}) if rec.scan else None, "container": ContainerPass(
                size_type="22G1", declared_empty=True)})
    empty = box(1, "MSCU1234565", Verdict.CLEAR, data)
    ingest(store, [empty, box(2, "CSQU3054383", Verdict.SUSPECT, b"seized scan", "threat_confirmed")],
           {hashlib.sha256(data).hexdigest(): data})
    return store, empty.id


async def test_a_container_is_compared_with_an_empty_one_of_its_type_on_the_container_only(tmp_path: Path) -> None:
    hub, empty_id = box_hub(tmp_path)
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        history = open_history(config, tmp_path / "station", client)
        await fetched(history, BOX_READ)
        found = history.found(BOX_READ)
        assert found is not None and [(r.record_id, r.basis) for r in found.references] == [(empty_id, "same_type_empty")]
        current = portal_pass(9, PortalPass(1), BOX)  # its portal's linac at 6 MV, as the reference's
        if current.shape[1] != found.references[0].scan_shape[1]:  # type: ignore[index]
            pytest.skip("the generator drew another detector height for this seed")
        loaded = await history.judge(BOX_READ, current, declared_empty=False)
        unknown = await history.judge(BOX_READ, current)
        result = await history.judge(BOX_READ, current, declared_empty=True)
        other_gantry = await history.judge(BOX_READ, Scan(current.high[:, :-8], current.low[:, :-8]), declared_empty=True)
    assert loaded.status == unknown.status == "no_history" and "not declared empty" in loaded.detail
    assert loaded.code == unknown.code == "type_not_declared_empty"
    assert loaded.basis == "same_type_empty"
    assert other_gantry.status == "no_history" and "another kind of gantry" in other_gantry.detail
    assert (other_gantry.code, other_gantry.values) == ("type_other_width", {
        "reference": empty_id, "reference_px": str(current.shape[1]), "scan_px": str(current.shape[1] - 8)})
    assert result.code is None and result.values == {}
    assert result.status == "compared" and result.basis == "same_type_empty" and result.reference_ids == [empty_id]
    assert all(r.location in CONTAINER_PARTS for r in result.regions)
    assert "not_the_container" in result.suppressed and "22G1" in result.detail


def test_a_container_pass_carries_its_declaration() -> None:
    from risk.bundle import Declaration
    decl = Declaration(ref="D-9", trader="Golden Bay", container="CSQU3054383", declared_empty=True)
    assert container_pass(ItemKind.CONTAINER, BOX_READ, decl) == ContainerPass(declared_empty=True, declaration="D-9")
    assert container_pass(ItemKind.VEHICLE, BOX_READ, None, "45G1") == ContainerPass(size_type="45G1")
    assert container_pass(ItemKind.VEHICLE, PLATE_READ, decl) is None


async def test_a_container_never_seen_asks_with_the_size_type_its_camera_read(tmp_path: Path) -> None:
    hub, empty_id = box_hub(tmp_path)
    new = [Identity(kind="container", value="FCIU9999990", source="cam-top")]
    async with hub_serving(hub, tmp_path) as config, hub_client(config) as client:
        history = open_history(config, tmp_path / "station", client)
        history.prefetch(new, "22G1")
        await asyncio.gather(*history._fetches.values())
        found = history.found(new)
        blind = open_history(config, tmp_path / "station-2", client)
        await fetched(blind, new)  # without the code: nothing of its own, nothing of its type
        unknown = blind.found(new)
    assert found is not None and [(r.record_id, r.basis) for r in found.references] == [(empty_id, "same_type_empty")]
    assert unknown is not None and unknown.references == ()
