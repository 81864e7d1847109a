"""A vehicle's history at the station against answers a real hub never gives (fields of the wrong type, damaged
JSON, a scan larger than its pass says) or gives at a bad moment (a scan that fails to arrive, an answer that
changed since): the station refuses or works around them in one sentence, counted, and the lane keeps running."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from central_sync.hub.search import normalise
from central_sync.schema import Identity
from edge.config import HistorySection
from edge.history import FETCH_KEPT_S, HistoryCache, HubHistory, VehicleHistory, identity_key
from edge.identity import fuse
from gantry_station import gantry, vehicle_scan
from models.scan import Scan
from polling import until

PLATE = "AB1234"
READ = [Identity(kind="plate", value=PLATE, source="cam-front")]
DAY = 86400.0


def scan_bytes(seed: int, pixel_mm: float = 5.0) -> bytes:
    a = np.random.default_rng(seed).integers(1000, 60000, (80, 64), dtype=np.uint16)
    return Scan(high=a, low=a.copy(), meta={"pixel_mm": pixel_mm}).to_bytes()


def current(pixel_mm: float = 5.0) -> Scan:
    a = np.full((80, 64), 30000, np.uint16)
    return Scan(high=a, low=a.copy(), meta={"pixel_mm": pixel_mm})


def a_pass(record_id: str, days_ago: float, outcome: str = "cleared", scan: bytes | None = None) -> dict[str, Any]:
    """A pass as the hub's API writes it (central_sync.hub.history.Pass.to_json)."""
    return {"record_id": record_id, "station": "gate-1", "decided_ts": time.time() - days_ago * DAY,
            "item_kind": "vehicle", "verdict": "clear", "outcome": outcome,
            "scan_sha256": hashlib.sha256(scan).hexdigest() if scan else None, "scan_size": len(scan) if scan else None,
            "scan_shape": [80, 64] if scan else None, "basis": "same_vehicle", "size_type": None,
            "declared_empty": None}


class Hub:
    """The hub's history API as an httpx.MockTransport answers it: `answers` by normalised value (a dict is sent as
    JSON, bytes as they are), `images` by sha256 (bytes, or an HTTP status to fail with)."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any] | bytes] = {}
        self.images: dict[str, bytes | int] = {}
        self.asked: list[str] = []
        self.gate: asyncio.Event | None = None  # answers wait for it when set (a slow hub)
        self.served = 0  # bytes of scans the station read

    def offer(self, passes: list[dict[str, Any]], references: list[dict[str, Any]], *scans: bytes) -> None:
        self.answers[PLATE] = {"kind": "plate", "value": PLATE, "passes": passes, "references": references}
        self.images.update({hashlib.sha256(s).hexdigest(): s for s in scans})

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.asked.append(path)
        if path.startswith("/api/history/"):
            if self.gate is not None:
                await self.gate.wait()
            answer = self.answers.get(normalise(path.rsplit("/", 1)[1]), {"passes": [], "references": []})
            return httpx.Response(200, content=answer if isinstance(answer, bytes) else json.dumps(answer).encode())
        image = self.images.get(path.rsplit("/", 1)[1], 404)
        return httpx.Response(image, text="not now") if isinstance(image, int) else \
            httpx.Response(200, content=self._streamed(image))

    async def _streamed(self, data: bytes, chunk: int = 65536) -> AsyncIterator[bytes]:
        for at in range(0, len(data), chunk):
            self.served += len(data[at:at + chunk])
            yield data[at:at + chunk]


class Compared:
    """A comparison that records what it was given (the comparison itself is tested in tests/models)."""

    def __init__(self, result: dict[str, Any] | None = None) -> None:
        self.result = result or {"regions": [], "registration": {"residual": 0.1}, "suppressed": {}}
        self.calls: list[list[Any]] = []

    def __call__(self, scan: Scan, references: list[Any]) -> dict[str, Any]:
        self.calls.append(references)
        return self.result


def station(tmp_path: Path, hub: Hub | None, compare: Compared | None = None, **config: Any) -> VehicleHistory:
    """The station's history service asking `hub` (none: its cache only); a reference is prepared as its meta."""
    section = HistorySection(hub_url="http://hub" if hub else "", **config)
    client = httpx.AsyncClient(transport=httpx.MockTransport(hub.handle)) if hub else None
    return VehicleHistory(section, HistoryCache(tmp_path / "history", section.cache_entries, section.cache_bytes),
                          HubHistory(client, section) if client else None, prepare=lambda s: dict(s.meta),
                          compare=compare or Compared())


async def fetched(history: VehicleHistory, identities: list[Identity] = READ) -> None:
    history.prefetch(identities)
    await asyncio.gather(*history._fetches.values())


def cached(history: VehicleHistory, passes: list[dict[str, Any]], references: list[dict[str, Any]],
           *scans: bytes) -> None:
    """The station's cache holds this answer for the plate (an earlier fetch)."""
    history.cache.put(identity_key("plate", PLATE), {"passes": passes, "references": references},
                      {hashlib.sha256(s).hexdigest(): s for s in scans})


@pytest.mark.parametrize("field,value", [
    ("decided_ts", "2026-01-01"), ("decided_ts", None), ("decided_ts", float("nan")), ("decided_ts", True),
    ("scan_shape", [80]), ("scan_shape", [80, "64"]), ("scan_sha256", "../../etc/passwd"), ("outcome", "seized"),
    ("record_id", 7), ("declared_empty", "no"),
])
async def test_a_pass_of_the_wrong_type_refuses_the_answer_and_the_cache_answers(tmp_path: Path, field: str,
                                                                                   value: Any) -> None:
    """One bad field in one pass: the whole answer is refused in one sentence naming it (counted hub_failed) and the
    cache's answer is used; the risk facts read from it never fail (a decided_ts of text beside a number raised
    TypeError in the risk check, and the item got no record)."""
    data = scan_bytes(1)
    hub = Hub()
    good = a_pass("r-new", 1, scan=data)
    hub.offer([{**a_pass("r-bad", 2, scan=data), field: value}, good], [good], data)
    history = station(tmp_path, hub)
    cached(history, [a_pass("r-old", 30, "seizure")], [])
    await fetched(history)
    assert history.counts["hub_failed"] == 1 and history.counts["from_cache"] == 1
    assert history.facts(READ) == {"history.passes": 1, "history.seizures": 1, "history.last_outcome": "seizure"}
    assert (await history.judge(READ, current())).status == "no_history"


async def test_a_comparison_that_fails_unexpectedly_is_a_failed_history_not_an_error(tmp_path: Path) -> None:
    data = scan_bytes(1)
    hub = Hub()
    ref = a_pass("r-1", 1, scan=data)
    hub.offer([ref], [ref], data)
    history = station(tmp_path, hub, compare=Compared({"registration": {}}))  # no regions: a KeyError in reading it
    await fetched(history)
    result = await history.judge(READ, current())
    assert result.status == "failed" and "KeyError" in result.detail and history.counts["failed"] == 1
    assert result.code == "internal_error"


async def test_more_stretches_not_compared_than_a_record_holds_are_merged(tmp_path: Path) -> None:
    """70 stretches with the beam off (a pulsing portal): the record holds 64 (the nearest merged, every line not
    compared still shaded), and says so; it raised a ValidationError out of the comparison task."""
    boxes = [(0.0, 100.0 + k * 25, 60.0, 110.0 + k * 25) for k in range(70)]
    data = scan_bytes(1)
    hub = Hub()
    ref = a_pass("r-1", 1, scan=data)
    hub.offer([ref], [ref], data)
    history = station(tmp_path, hub, compare=Compared({"regions": [], "registration": {}, "suppressed": {},
                                                       "uncompared": [list(b) for b in boxes]}))
    await fetched(history)
    result = await history.judge(READ, current())
    assert result.status == "compared" and len(result.uncompared) == 64 and "70 stretches" in result.detail
    for box in boxes:
        assert any(u[1] <= box[1] and box[3] <= u[3] for u in result.uncompared)


async def test_a_damaged_reference_never_ends_the_lane(tmp_path: Path) -> None:
    """A reference whose scan_shape is one number (judge raised IndexError in the gantry's history-compare task, a
    child of the flow's TaskGroup: the whole lane stopped): the answer is refused, the record notes no history, and
    the lane's flow runs on."""
    tid = "E2801160200073F1A2B3C4D5"
    data = scan_bytes(1)
    hub = Hub()
    bad = {**a_pass("r-1", 1, scan=data), "scan_shape": [80]}
    hub.answers[tid] = {"passes": [bad, {**bad, "record_id": "r-2"}], "references": [bad, {**bad, "record_id": "r-2"}]}
    hub.images[hashlib.sha256(data).hexdigest()] = data
    history = station(tmp_path / "station", hub, timeout_s=5.0)
    async with gantry(tmp_path, [vehicle_scan(False)], history=history, model=False) as g:
        flow = next(t for t in asyncio.all_tasks() if t.get_name() == "flow")
        tag = [Identity(kind="rfid_tid", value=tid, source="uhf")]
        g.flow.tags._present[("uhf", tid)] = tag
        g.sim.add_vehicle(4.0, lead_m=-1.5)
        [record] = await g.vehicles_decided(1)
        rec, _ = await until(lambda: (g.store.get(record.id), flow.done()), "the history note or the flow's end",
                             check=lambda r: r[0].history is not None or r[1], timeout=60)
        assert not flow.done()
    assert rec.history is not None and rec.history.status == "no_history" and history.counts["hub_failed"] == 1


async def test_a_fetch_still_running_when_the_record_is_written_never_answers_a_later_pass(tmp_path: Path) -> None:
    """Pass 1 ends before the slow hub answers (no history); meanwhile the officer's search of the reference found a
    seizure. Pass 2 of the vehicle asks again: it was compared with the seized pass, seizures 0, by the fetch of
    pass 1 that forget() had left running."""
    data = scan_bytes(1)
    hub = Hub()
    hub.gate = asyncio.Event()
    ref = a_pass("r-x", 10, scan=data)
    hub.offer([ref], [ref], data)
    history = station(tmp_path, hub)
    history.prefetch(READ)
    [first] = history._fetches.values()
    assert (await history.judge(READ, current())).status == "no_history"
    history.forget(READ)
    hub.gate.set()
    await asyncio.wait([first])  # answered, or cancelled
    hub.offer([{**ref, "outcome": "seizure"}], [])
    await fetched(history)
    assert history.facts(READ)["history.seizures"] == 1
    result = await history.judge(READ, current())
    assert result.status == "no_history" and result.reference_ids == []


async def test_a_fetch_of_long_ago_is_asked_again(tmp_path: Path) -> None:
    """A read no record kept (a camera's vote replaced it) leaves its fetch behind; when the identity is read again
    later, the hub is asked again."""
    hub = Hub()
    hub.offer([a_pass("r-1", 10)], [])
    history = station(tmp_path, hub)
    await fetched(history)
    hub.offer([a_pass("r-1", 10, "seizure")], [])
    await fetched(history)  # within the same vehicle's scan: the fetch is reused
    assert history.facts(READ)["history.seizures"] == 0 and len(hub.asked) == 1
    history._started[identity_key("plate", PLATE)] -= FETCH_KEPT_S + 1  # the vehicle comes back later
    await fetched(history)
    assert history.facts(READ)["history.seizures"] == 1 and len(hub.asked) == 2


async def test_a_fresh_answer_stands_when_a_reference_scan_fails_to_arrive(tmp_path: Path) -> None:
    """The cache holds r-x as the reference; the hub now says r-x was a seizure and offers r-y and r-z, r-y's scan
    answering 503: the fresh answer is used (seizures 1, r-x never compared) and the scan is compared with r-z, whose
    scan arrived. The whole answer was thrown away for the cache's (r-x compared, seizures 0)."""
    x, y, z = scan_bytes(1), scan_bytes(2), scan_bytes(3)
    hub = Hub()
    old = a_pass("r-x", 10, scan=x)
    history = station(tmp_path, hub)
    cached(history, [old], [old], x)
    refs = [a_pass("r-y", 20, scan=y), a_pass("r-z", 30, scan=z)]
    hub.offer([{**old, "outcome": "seizure"}, *refs], refs, z)
    hub.images[hashlib.sha256(y).hexdigest()] = 503
    await fetched(history)
    assert history.counts["from_hub"] == 1 and history.counts["scan_unavailable"] == 1
    assert history.facts(READ)["history.seizures"] == 1
    result = await history.judge(READ, current())
    assert result.status == "compared" and result.reference_ids == ["r-z"]


async def test_without_the_hub_a_cached_reference_older_than_max_age_days_is_not_used(tmp_path: Path) -> None:
    data = scan_bytes(1)
    history = station(tmp_path, None, max_age_days=30)
    old = a_pass("r-old", 400, scan=data)
    cached(history, [old], [old], data)
    await fetched(history)
    result = await history.judge(READ, current())
    assert history.counts["from_cache"] == 1 and result.status == "no_history" and result.reference_ids == []


async def test_an_identity_read_in_conflict_is_never_compared_by(tmp_path: Path) -> None:
    """Two plates of one jurisdiction on one vehicle (edge.identity flags both: one is misread): the station compared
    by the first that had references, another vehicle's. It compares by the vehicle's identity read without a
    conflict (its tag), and with only the conflicting plates it has no history, saying why."""
    other, own = scan_bytes(1), scan_bytes(2)
    hub = Hub()
    hub.answers[normalise("粤Z·B123港")] = {"passes": [a_pass("r-other-vehicle", 1, scan=other)],
                                          "references": [a_pass("r-other-vehicle", 1, scan=other)]}
    hub.answers[normalise("粤Z·A123港")] = {"passes": [a_pass("r-own", 5, scan=own)],
                                          "references": [a_pass("r-own", 5, scan=own)]}
    hub.answers["E280116020007300"] = {"passes": [a_pass("r-own", 5, scan=own)],
                                       "references": [a_pass("r-own", 5, scan=own)]}
    hub.images.update({hashlib.sha256(d).hexdigest(): d for d in (other, own)})
    plates = fuse([Identity(kind="plate", value="粤Z·B123港", source="cam-front"),  # the misread, voted first
                   Identity(kind="plate", value="粤Z·A123港", source="cam-rear")])
    assert all(p.conflict for p in plates)
    history = station(tmp_path, hub)
    await fetched(history, plates)
    alone = await history.judge(plates, current())
    assert alone.status == "no_history" and alone.reference_ids == [] and "conflict" in alone.detail
    assert (alone.code, alone.values) == ("identity_conflict", {"kind": "plate", "value": "粤Z·B123港"})
    tagged = [*plates, Identity(kind="rfid_tid", value="E280116020007300", source="uhf")]
    await fetched(history, tagged)
    result = await history.judge(tagged, current())
    assert result.status == "compared" and result.reference_ids == ["r-own"]
    assert result.identity == "rfid_tid:E280116020007300"


@pytest.mark.parametrize("body", [b'{"passes": [', b"\xff\xfe", b"[1, 2]",
                                  json.dumps({"passes": ["x"], "references": []}).encode()])
async def test_a_damaged_answer_is_counted_and_the_cache_answers(tmp_path: Path, body: bytes) -> None:
    """Truncated JSON, bytes that are no UTF-8, a list, passes that are no objects: the fetch raised out of its task
    (JSONDecodeError, TypeError, AttributeError), uncounted, and the cache was never asked."""
    hub = Hub()
    hub.answers[PLATE] = body
    history = station(tmp_path, hub)
    cached(history, [a_pass("r-old", 30, "seizure")], [])
    await fetched(history)
    assert history.counts["hub_failed"] == 1 and history.counts["from_cache"] == 1
    assert history.facts(READ)["history.seizures"] == 1


async def test_a_camera_read_corrected_in_place_is_fetched(tmp_path: Path) -> None:
    """A camera whose vote changes replaces its read in place (edge/stations/cameras.py): the list keeps its length,
    and the corrected plate was never asked for (no history though the hub had one)."""
    hub = Hub()
    hub.offer([a_pass("r-1", 3)], [])
    history = station(tmp_path, hub)
    identities: list[Identity] = [Identity(kind="plate", value="AB1238", source="cam-front")]
    follow = asyncio.create_task(history.follow(identities, poll_s=0.01))
    try:
        await until(lambda: len(hub.asked), "the first read asked for", timeout=10)
        identities[:] = READ
        await until(lambda: history.found(READ), "the corrected read's history", timeout=10)
    finally:
        follow.cancel()
    assert [p.rsplit("/", 1)[1] for p in hub.asked] == ["AB1238", PLATE]


async def test_a_reference_from_a_scanner_of_another_pixel_size_is_no_reference(tmp_path: Path) -> None:
    """The newest reference was scanned at 2 mm a pixel and this scan at 5 mm (the same detector count): it was
    compared. It is no usable reference (no history, saying why, counted); within 5 % it is compared."""
    near, far = scan_bytes(1, pixel_mm=5.1), scan_bytes(2, pixel_mm=2.0)
    hub = Hub()
    newest, older = a_pass("r-2mm", 1, scan=far), a_pass("r-5mm", 5, scan=near)
    hub.offer([newest, older], [newest, older], near, far)
    compared = Compared()
    history = station(tmp_path, hub, compare=compared)
    await fetched(history)
    refused = await history.judge(READ, current(pixel_mm=5.0))
    assert refused.status == "no_history" and "pixel_mm 2 against 5" in refused.detail
    assert (refused.code, refused.values) == ("other_scanner", {"reference": "r-2mm", "what": "pixel_mm",
                                                                "reference_value": "2", "scan_value": "5"})
    assert history.counts["other_scanner"] == 1 and compared.calls == []
    hub.offer([older, newest], [older, newest])  # the other way round: the 2 mm one only corroborates, and is left out
    history.forget(READ)
    await fetched(history)
    result = await history.judge(READ, current(pixel_mm=5.0))
    assert result.status == "compared" and result.reference_ids == ["r-5mm"]
    assert [ref["pixel_mm"] for ref in compared.calls[0]] == [5.1]



@pytest.mark.parametrize("advertised,most", [(1000, 1000), (None, 1024**2)])
async def test_a_scan_larger_than_its_pass_says_is_refused_without_reading_it_whole(tmp_path: Path,
                                                                                   advertised: int | None,
                                                                                   most: int) -> None:
    """A reference whose scan is 8 MiB where its pass says 1000 bytes (or says nothing) and the cache holds 1 MiB:
    it was read whole into memory before the cache refused it. The download stops past the smaller of the two, in
    one sentence naming the size; the answer stands."""
    huge = np.random.default_rng(0).bytes(8 * 1024**2)
    hub = Hub()
    ref = {**a_pass("r-1", 1, scan=huge), "scan_size": advertised}
    hub.offer([ref], [ref], huge)
    history = station(tmp_path, hub, cache_bytes=1024**2)
    await fetched(history)
    assert history.counts["scan_unavailable"] == 1 and history.counts["from_hub"] == 1
    assert hub.served <= most + 65536
    result = await history.judge(READ, current())
    assert result.status == "no_history" and "not held" in result.detail
    assert (result.code, result.values) == ("reference_not_held", {"reference": "r-1"})


async def test_a_scan_of_the_size_its_pass_says_arrives(tmp_path: Path) -> None:
    data = scan_bytes(1)
    hub = Hub()
    ref = a_pass("r-1", 1, scan=data)
    hub.offer([ref], [ref], data)
    history = station(tmp_path, hub)
    await fetched(history)
    assert (await history.judge(READ, current())).status == "compared" and hub.served == len(data)


async def test_an_answer_the_cache_cannot_keep_is_a_reference_not_held_never_a_hub_that_did_not_answer(
        tmp_path: Path) -> None:
    """The hub answers but the station cannot write it to its cache (a full disk: here a file where the cache builds
    the entry). The fetch ended in an OSError nobody logged, and the officer read that the hub did not answer: the
    answer stands, its scan is not held, and that is said and counted."""
    data = scan_bytes(1)
    hub = Hub()
    ref = a_pass("r-1", 1, scan=data)
    hub.offer([ref], [ref], data)
    history = station(tmp_path, hub)
    (history.cache.root / f".tmp-{identity_key('plate', PLATE)}-{os.getpid()}").write_bytes(b"")
    history.prefetch(READ)
    await asyncio.gather(*history._fetches.values(), return_exceptions=True)
    result = await history.judge(READ, current())
    assert (result.code, result.values) == ("reference_not_held", {"reference": "r-1"})
    assert history.counts["cache_unwritable"] == 1 and history.facts(READ)["history.passes"] == 1
