"""A vehicle's history at the station: references fetched from the hub while the vehicle is scanned, a bounded
local cache, the comparison after the scan, and the facts the risk rules read.

As soon as a vehicle identity (plate, container number, UHF tag TID) is on the item, its history is asked of
the hub's API (`GET /api/history/{kind}/{value}`, then each reference's scan at `/api/images/{sha256}`) with
this station's service token. HTTP and not MQTT: the hub API already answers reads with per-client tokens and
serves the scans, while the broker's ACLs give a station no request/response topics and its packet limits
(EMQX: 1 MB) are smaller than a container scan. What arrives is kept in a cache under `data_dir/history`,
one directory per vehicle identity, least recently used evicted past `cache_entries` or `cache_bytes`.

The hub is optional. A fetch that fails (unreachable, refused, damaged) falls back to the cache; with neither,
or when the fetch has not finished when the scan ends, the pass has "no history": a note on the record, not a
fault. Nothing here waits before the verdict: the comparison runs after the record is committed, off the event
loop and within `compare_budget_s`, and its result is added to the record (synced like a review). It informs
the officer and the risk rules; it never changes the detector's verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import shutil
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, get_args

import httpx
import structlog

from central_sync.hub.history import HISTORY_KINDS, OUTCOMES, Basis, Pass
from central_sync.hub.search import normalise
from central_sync.schema import ContainerPass, History, HistoryChange, HistoryCode, Identity, ItemKind
from edge.config import HistorySection
from edge.errors import HistoryUnavailable
from models.errors import ModelError
from models.scan import Scan, load_scan

log = structlog.get_logger("edge.history")

ANSWER = "answer.json"
HISTORY_EVENTS = ("from_hub", "hub_failed", "from_cache", "cache_unreadable", "reference_unreadable", "no_history",
                  "compared", "failed", "over_budget", "stored", "hits", "misses", "evicted", "refused", "scan_unavailable", "other_scanner",
                  "cache_unwritable")
"""What VehicleHistory.counts and HistoryCache.counts count (exported as edge_history_events)."""
MAX_FETCHES = 256
"""Fetches remembered at once; past it the finished ones are dropped (a later read asks the hub again)."""
FETCH_KEPT_S = 120.0
"""A fetch started longer ago is asked again when its identity is read: a vehicle is scanned in seconds, and a fetch
left behind (a read no record kept) must not answer a later pass with what the hub said then."""
CONTAINER_PARTS = ("cargo", "roof", "floor", "door")
"""Where a change lies on the container itself (models.history.compare locations): the only changes kept against a
reference of another container of the same size/type (the tractor, its tanks and its cab are another vehicle's)."""
PRIORITY = ("container", "plate", "rfid_tid")
"""Which identity's references a comparison uses when several are known (a container is what is scanned)."""

Prepare = Callable[[Scan], Any]
"""A reference scan -> what the comparison needs of it (models.history.compare.prepare), made before the scan ends."""
Compare = Callable[[Scan, list[Any]], dict[str, Any]]
"""(current scan, prepared references, newest first) -> models.history.compare.Comparison.to_json()."""
DAY = 86400.0
CORROBORATING = 2
"""References a comparison uses: the newest, and a second that corroborates its regions
(models.history.compare.compare_references)."""
SCANNER = {"pixel_mm": 0.05, "line_mm": 0.30, "energy_kev": 0.05}
"""What a scan's meta states of the scanner that made it, and how far apart (a share of the larger) the scan's and its
reference's may be: the registration fits a vertical scale within ±4 % and a vehicle's speed, the line pitch,
within ±30 % (models/history/register.py); another energy attenuates otherwise."""
MAX_UNCOMPARED = 64
"""Not-compared boxes a record carries at most (central_sync.schema.History.uncompared); more are merged."""


def prepare_reference(reference: Scan) -> Any:
    """models.history.compare.prepare: the reference's log-attenuation, binned as its size asks."""
    from models.history.compare import prepare

    return prepare(reference)


def compare_scans(current: Scan, references: list[Any]) -> dict[str, Any]:
    """models.history.compare against the prepared references (the newest, corroborated by the second when there are
    two), the cargo bay compared too: no declaration reaches the station yet to say the vehicle is loaded (issue 18)."""
    from models.history.compare import compare_references

    return compare_references(current, references).to_json()


def history_facts(passes: Sequence[Pass] | None) -> dict[str, int | str | None]:
    """The risk facts of a vehicle's history (risk.engine.Facts): None each when the history is unknown."""
    if passes is None:
        return {"history.passes": None, "history.seizures": None, "history.last_outcome": None}
    newest = max(passes, key=lambda p: p.decided_ts, default=None)
    return {"history.passes": len(passes), "history.seizures": sum(p.outcome == "seizure" for p in passes),
            "history.last_outcome": newest.outcome if newest else None}


class DeclarationFacts(Protocol):
    """What a declaration (risk.bundle.Declaration) says of a container's pass."""

    @property
    def ref(self) -> str: ...
    @property
    def declared_empty(self) -> bool: ...


def container_pass(kind: ItemKind, identities: Sequence[Identity], declaration: DeclarationFacts | None,
                   size_type: str | None = None) -> ContainerPass | None:
    """The record's container facts: the size/type code when known, declared empty as the declaration the risk
    check found says; None for an item that is no container and carries no container number."""
    if kind is not ItemKind.CONTAINER and not any(i.kind == "container" and i.value for i in identities):
        return None
    if declaration is None:
        return ContainerPass(size_type=size_type)
    return ContainerPass(size_type=size_type, declared_empty=declaration.declared_empty,
                         declaration=declaration.ref[:64])


def container_only(regions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The change regions that lie on the container (CONTAINER_PARTS) and how many were dropped."""
    kept = [r for r in regions if r.get("location") in CONTAINER_PARTS]
    return kept, len(regions) - len(kept)


def other_scanner(reference: dict[str, Any], current: dict[str, Any]) -> tuple[str, float, float] | None:
    """What differs beyond its tolerance (SCANNER) between what two scans' meta state of their scanner: (key, the
    reference's, the scan's), None when nothing does or one does not state it. A reference of another pixel size,
    line pitch or energy is no reference (its attenuation and geometry are not this scan's)."""
    for key, share in SCANNER.items():
        a, b = _stated(reference.get(key)), _stated(current.get(key))
        if a is not None and b is not None and abs(a - b) > share * max(a, b):
            return key, a, b
    return None


def not_compared(base: History, code: HistoryCode, detail: str, **values: object) -> History:
    """`base` with why it was not compared: the English sentence, and its code with the values it names (checked)."""
    return History.model_validate({**base.model_dump(), "detail": detail, "code": code,
                                   "values": {k: str(v) for k, v in values.items()}})


def _stated(value: Any) -> float | None:
    """A positive finite number a scan's meta states, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value) if isinstance(value, float) or abs(value) < 2**53 else math.inf
    return number if math.isfinite(number) and number > 0 else None


def merged(boxes: list[tuple[float, ...]], most: int = MAX_UNCOMPARED) -> list[tuple[float, ...]]:
    """At most `most` not-compared boxes [column0, line0, column1, line1]: the two nearest along the scan merged into
    the box over both until they fit. Shading lines that were compared is the safe side (the officer reads no
    "no change" there); leaving a box out is not."""
    out = sorted(boxes, key=lambda b: b[1])
    while len(out) > most:
        n = min(range(len(out) - 1), key=lambda k: out[k + 1][1] - out[k][3])
        a, b = out[n], out[n + 1]
        out[n:n + 2] = [(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))]
    return out


def identity_key(kind: str, value: str) -> str:
    """The cache's name for a vehicle identity (normalised as the hub indexes it)."""
    return hashlib.sha256(f"{kind}:{normalise(value)}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Found:
    """A vehicle's history as fetched or cached: its passes, references and the reference scans held."""

    kind: str
    value: str
    passes: tuple[Pass, ...]
    references: tuple[Pass, ...]
    scans: dict[str, Path]
    source: str  # "hub" or "cache"
    conflict: str | None = None  # set by VehicleHistory.found: the identity was read in conflict with another read
    prepared: tuple[tuple[Pass, Any], ...] = ()  # the newest references whose scan is held (CORROBORATING, of one
    # basis) and what the comparison needs of each, prepared while the vehicle was scanned
    scanner: dict[str, dict[str, Any]] = field(default_factory=dict)  # by record id: what each prepared reference's
    # meta states of its scanner (SCANNER)


class HistoryCache:
    """Answers and reference scans on disk, one directory per identity, LRU bounded by count and bytes.

    Blocking file work: call it off the event loop (from any thread: one lock guards it)."""

    def __init__(self, root: Path, max_entries: int, max_bytes: int) -> None:
        self.root, self.max_entries, self.max_bytes = root, max_entries, max_bytes
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        root.mkdir(parents=True, exist_ok=True)
        self._sizes: OrderedDict[str, int] = OrderedDict()
        for entry in sorted((d for d in root.iterdir() if d.is_dir() and (d / ANSWER).is_file()),
                            key=lambda d: d.stat().st_mtime):
            self._sizes[entry.name] = sum(f.stat().st_size for f in entry.iterdir())
        for stale in (d for d in root.iterdir() if d.name.startswith(".tmp-")):
            shutil.rmtree(stale, ignore_errors=True)

    @property
    def entries(self) -> int:
        return len(self._sizes)

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def put(self, key: str, answer: dict[str, Any], scans: dict[str, bytes]) -> bool:
        """Keep a vehicle's answer and scans (replacing what was held); False when it alone exceeds the cache."""
        with self._lock:
            return self._put(key, answer, scans)

    def _put(self, key: str, answer: dict[str, Any], scans: dict[str, bytes]) -> bool:
        body = json.dumps(answer).encode()
        size = len(body) + sum(len(b) for b in scans.values())
        if size > self.max_bytes:
            self.counts["refused"] += 1
            log.warning("history.cache_refused", key=key, detail=f"a history of {size} bytes does not fit a cache "
                        f"of {self.max_bytes} bytes")
            return False
        tmp = self.root / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for sha, data in scans.items():
            (tmp / f"{sha}.npz").write_bytes(data)
        (tmp / ANSWER).write_bytes(body)
        self._drop(key)
        tmp.rename(self.root / key)
        self._sizes[key] = size
        self.counts["stored"] += 1
        self._evict()
        return True

    def get(self, key: str) -> tuple[dict[str, Any], dict[str, Path]] | None:
        """The answer and scan paths held for the identity (now the most recently used), or None."""
        with self._lock:
            return self._get(key)

    def _get(self, key: str) -> tuple[dict[str, Any], dict[str, Path]] | None:
        entry = self.root / key
        if key not in self._sizes:
            self.counts["misses"] += 1
            return None
        self.counts["hits"] += 1
        self._sizes.move_to_end(key)
        os.utime(entry)
        answer = json.loads((entry / ANSWER).read_bytes())
        return answer, {f.stem: f for f in entry.glob("*.npz")}

    def scan(self, sha: str) -> bytes | None:
        """A reference scan held under any identity (a plate's and a TID's references are often the same)."""
        with self._lock:
            keys = list(self._sizes)
        for key in keys:
            path = self.root / key / f"{sha}.npz"
            try:
                return path.read_bytes()
            except FileNotFoundError:
                continue
        return None

    def _drop(self, key: str) -> None:
        shutil.rmtree(self.root / key, ignore_errors=True)
        self._sizes.pop(key, None)

    def _evict(self) -> None:
        while self._sizes and (len(self._sizes) > self.max_entries or self.size_bytes > self.max_bytes):
            oldest = next(iter(self._sizes))
            self._drop(oldest)
            self.counts["evicted"] += 1


class HubHistory:
    """The hub's history API with this station's token; every failure is a HistoryUnavailable with why."""

    def __init__(self, client: httpx.AsyncClient, config: HistorySection) -> None:
        self.client, self.config = client, config

    async def answer(self, kind: str, value: str, size_type: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_age_days": self.config.max_age_days, "count": self.config.references}
        if kind == "container" and size_type:
            params["size_type"] = size_type  # references of its type too, even for a container never seen before
        body = await self._get(f"/api/history/{kind}/{value}", params)
        try:
            answer = json.loads(body)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise HistoryUnavailable(f"the hub's history of {kind} {value!r} is not JSON ({len(body)} bytes): "
                                     f"{exc}") from exc
        if not isinstance(answer, dict):
            raise HistoryUnavailable(f"the hub's history of {kind} {value!r} is {answer!r:.80}, not an object")
        return answer

    async def scan(self, sha: str, size: int | None = None) -> bytes:
        """A reference's scan, read as it streams in and stopped past the size its pass gives (`size`, when it gives
        one) or past the whole cache: a scan larger than that is refused without being read whole."""
        most, limit = self.config.cache_bytes, "the history cache's size"
        if size and size < most:
            most, limit = size, "the size its pass gives"
        data = await self._get(f"/api/images/{sha}", most=most)
        if len(data) > most:
            raise HistoryUnavailable(f"the hub's scan {sha} is larger than {most} bytes ({limit}): its download was "
                                     "stopped there")
        if hashlib.sha256(data).hexdigest() != sha:
            raise HistoryUnavailable(f"the hub sent {len(data)} bytes for scan {sha} that hash to something else")
        return data

    async def _get(self, path: str, params: dict[str, Any] | None = None, most: int | None = None) -> bytes:
        """The body of a 200 answer; with `most`, at most one byte more (the rest is never read)."""
        url = f"{self.config.hub_url.rstrip('/')}{path}"
        try:
            async with self.client.stream("GET", url, params=params, timeout=self.config.timeout_s) as resp:
                if resp.status_code != 200:
                    text = (await _head(resp, 200)).decode(errors="replace")
                    raise HistoryUnavailable(f"the hub at {self.config.hub_url} answered {path} with "
                                             f"{resp.status_code}: {text}")
                return await (_head(resp, most + 1) if most is not None else resp.aread())
        except httpx.HTTPError as exc:
            raise HistoryUnavailable(f"the hub at {self.config.hub_url} did not answer {path}: {exc!r}") from exc


async def _head(resp: httpx.Response, most: int) -> bytes:
    """At most `most` bytes of a streamed answer's body."""
    data = bytearray()
    async for chunk in resp.aiter_bytes():
        data += chunk
        if len(data) >= most:
            break
    return bytes(data[:most])


SHA256 = re.compile(r"[0-9a-f]{64}")


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


PASS_FIELDS: dict[str, tuple[bool, Callable[[Any], bool], str]] = {
    # field: (required, check, what it must be)
    "record_id": (True, lambda v: isinstance(v, str) and v != "", "a record id"),
    "station": (True, lambda v: isinstance(v, str), "a string"),
    "decided_ts": (True, lambda v: isinstance(v, float) and math.isfinite(v) or _whole(v) and abs(v) < 2**53,
                   "a finite number"),
    "item_kind": (True, lambda v: isinstance(v, str), "a string"),
    "verdict": (True, lambda v: isinstance(v, str), "a string"),
    "outcome": (True, lambda v: isinstance(v, str) and v in OUTCOMES, f"one of {', '.join(OUTCOMES)}"),
    "scan_sha256": (True, lambda v: v is None or isinstance(v, str) and SHA256.fullmatch(v) is not None,
                    "null or a lower-case sha256"),
    "scan_size": (True, lambda v: v is None or _whole(v) and v >= 0, "null or a byte count"),
    "scan_shape": (True, lambda v: v is None or isinstance(v, list) and len(v) == 2 and all(_whole(n) and n > 0
                                                                                          for n in v),
                   "null or two positive whole numbers"),
    "basis": (False, lambda v: isinstance(v, str) and v in get_args(Basis), f"one of {', '.join(get_args(Basis))}"),
    "size_type": (False, lambda v: v is None or isinstance(v, str), "null or a string"),
    "declared_empty": (False, lambda v: v is None or isinstance(v, bool), "null, true or false"),
    "conflict": (False, lambda v: isinstance(v, bool), "true or false"),
}
"""Each field of a pass the station reads, checked as it arrives: a pass it cannot use safely is refused, never
half-read (a one-number scan_shape, a decided_ts of text: the comparison or the risk facts would fail later)."""


def as_passes(rows: Any, what: str, reference: bool = False) -> tuple[Pass, ...]:
    """Passes from the hub's JSON answer (or the cache's copy of it), every field checked (fields a newer hub adds
    are ignored); a ValueError naming the first bad value. A reference must name its scan."""
    if not isinstance(rows, list):
        raise ValueError(f"{what} is {rows!r:.80}, not a list of passes")
    return tuple(as_pass(row, f"{what}[{n}]", reference) for n, row in enumerate(rows))


def as_pass(row: Any, what: str, reference: bool = False) -> Pass:
    """One pass of the hub's answer, checked (as_passes)."""
    if not isinstance(row, dict):
        raise ValueError(f"{what} is {row!r:.80}, not a pass")
    for name, (required, check, must) in PASS_FIELDS.items():
        if name not in row:
            if required:
                raise ValueError(f"{what} has no {name}")
        elif not check(row[name]):
            raise ValueError(f"{what} {name} is {row[name]!r:.80}, not {must}")
    if reference and row["scan_sha256"] is None:
        raise ValueError(f"{what} is a reference without a scan_sha256")
    known = {k: v for k, v in row.items() if k in PASS_FIELDS}
    known["scan_shape"] = tuple(known["scan_shape"]) if known["scan_shape"] else None
    return Pass(**known)


@dataclass
class VehicleHistory:
    """Fetches while the vehicle is scanned, answers from what arrived, compares after the record is written."""

    config: HistorySection
    cache: HistoryCache
    hub: HubHistory | None
    prepare: Prepare = prepare_reference
    compare: Compare = compare_scans
    counts: Counter[str] = field(default_factory=Counter)
    _fetches: dict[str, asyncio.Task[Found | None]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)  # when each fetch started (the loop's clock)

    def prefetch(self, identities: Sequence[Identity], size_type: str | None = None) -> None:
        """Start fetching the history of each vehicle identity not asked for recently (returns at once); a
        container's with its size/type code when the camera read it."""
        now = asyncio.get_running_loop().time()
        if len(self._fetches) > MAX_FETCHES:  # reads no record kept (a camera's vote changed): drop the finished
            for key in [k for k, t in self._fetches.items() if t.done()]:
                self._drop(key)
        for ident in identities:
            if ident.kind in HISTORY_KINDS and ident.value.strip():
                key = identity_key(ident.kind, ident.value)
                if key in self._fetches and now - self._started[key] > FETCH_KEPT_S:
                    self._drop(key)
                if key not in self._fetches:
                    self._fetches[key] = asyncio.create_task(self._fetch(ident.kind, ident.value, key, size_type),
                                                             name=f"history:{ident.kind}")
                    self._started[key] = now

    async def follow(self, identities: list[Identity], poll_s: float = 0.05,
                     size_type: Callable[[], str | None] = lambda: None) -> None:
        """Prefetch each identity as it joins the item (the readers and cameras add them); runs until cancelled.
        `size_type` gives the container's size/type code as read so far (the camera sets it with the number). A
        camera replaces its read in place when its vote changes: what is read is compared, not how many."""
        seen: set[tuple[str, str]] = set()
        now: set[tuple[str, str]]
        while True:
            if (now := {(i.kind, i.value) for i in identities}) != seen:
                seen = now
                self.prefetch(identities, size_type())
            await asyncio.sleep(poll_s)

    def found(self, identities: Sequence[Identity]) -> Found | None:
        """The best history fetched so far for these identities (never waits): of an identity read without a
        conflict first (edge.identity flags two reads that cannot both be right: one is another vehicle's misread),
        then with references, then container, plate, TID."""
        done: list[Found] = []
        for ident in identities:
            task = self._fetches.get(identity_key(ident.kind, ident.value)) if ident.kind in HISTORY_KINDS else None
            if task is not None and task.done() and not task.cancelled() and task.exception() is None \
                    and (f := task.result()) is not None:
                done.append(replace(f, conflict=ident.conflict))
        return min(done, key=lambda f: (bool(f.conflict), not f.references, PRIORITY.index(f.kind)), default=None)

    def facts(self, identities: Sequence[Identity]) -> dict[str, int | str | None]:
        """The risk facts of the history fetched so far (never waits): None each while nothing has arrived."""
        found = self.found(identities)
        return history_facts(found.passes if found is not None else None)

    def forget(self, identities: Sequence[Identity]) -> None:
        """Drop the fetches of an item once its record is written, cancelling those still running: the next pass
        asks again (a fetch left behind would answer it, days later, with what the hub said then)."""
        for ident in identities:
            self._drop(identity_key(ident.kind, ident.value))

    def _drop(self, key: str) -> None:
        if (task := self._fetches.pop(key, None)) is not None:
            task.cancel()
        self._started.pop(key, None)

    async def judge(self, identities: Sequence[Identity], scan: Scan, declared_empty: bool | None = None) -> History:
        """The comparison of the scan with the vehicle's reference, or why there is none (_judge); never raises (but
        cancellation): it runs in the lane's flow after the record is written, and anything it could not handle is
        a failed comparison, counted and logged in one sentence, never the end of the lane."""
        try:
            return await self._judge(identities, scan, declared_empty)
        except Exception as exc:  # the top of the comparison: nothing in it may end the gantry's flow
            self.counts["failed"] += 1
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else '-'}"
            log.error("history.judge_failed", error=why)
            return not_compared(History(status="failed"), "internal_error", f"the comparison could not be made ({why})")

    async def _judge(self, identities: Sequence[Identity], scan: Scan, declared_empty: bool | None) -> History:
        """The comparison of the scan with the newest reference that arrived (its regions corroborated by the next
        reference of the same basis when one is held), or why there is none. A reference of another container of
        the same size/type (basis same_type_empty: the hub offers those after the container's own) is used only for
        a pass declared empty and scanned at the same detector width, and only the changes on the container are
        kept."""
        found = self.found(identities)
        if found is None:
            self.counts["no_history"] += 1
            return not_compared(History(status="no_history"), *self._not_found(identities))
        if not found.references:
            self.counts["no_history"] += 1
            return not_compared(History(status="no_history"), "no_reference", f"the vehicle has {len(found.passes)} "
                                "earlier pass(es) and none is a reference", passes=len(found.passes))
        if found.conflict:
            self.counts["no_history"] += 1
            return not_compared(History(status="no_history"), "identity_conflict", f"the {found.kind} {found.value} "
                                f"was read in conflict with another read ({found.conflict}), and no other identity of "
                                "the vehicle has a history: its references may be another vehicle's",
                                kind=found.kind, value=found.value)
        ref = found.prepared[0][0] if found.prepared else found.references[0]
        label = f"{found.kind}:{found.value}"
        basis = History(status="no_history", identity=label, basis=ref.basis)
        if ref.basis == "same_type_empty" and declared_empty is not True:
            self.counts["no_history"] += 1
            return not_compared(basis, "type_not_declared_empty", "the only references are other containers of its "
                                "size/type travelling empty, and this pass is not declared empty")
        if ref.basis == "same_type_empty" and ref.scan_shape is not None and ref.scan_shape[1] != scan.shape[1]:
            self.counts["no_history"] += 1
            return not_compared(basis, "type_other_width", f"the reference of its size/type ({ref.record_id}) was "
                                f"scanned {ref.scan_shape[1]} detector pixels wide and this scan {scan.shape[1]}: "
                                "another kind of gantry", reference=ref.record_id, reference_px=ref.scan_shape[1],
                                scan_px=scan.shape[1])
        if not found.prepared:
            self.counts["no_history"] += 1
            return not_compared(basis, "reference_not_held", f"the scan of reference {ref.record_id} is not held by "
                                "the station or could not be read", reference=ref.record_id)
        if differs := other_scanner(found.scanner.get(ref.record_id, {}), scan.meta):
            self.counts["no_history"] += 1
            self.counts["other_scanner"] += 1
            what, theirs, ours = differs
            return not_compared(basis, "other_scanner", f"the reference {ref.record_id} was made by another kind of "
                                f"scanner ({what} {theirs:g} against {ours:g}, more than {SCANNER[what]:.0%} apart)",
                                reference=ref.record_id, what=what, reference_value=f"{theirs:g}",
                                scan_value=f"{ours:g}")
        second = [(r, p) for r, p in found.prepared[1:] if (r.scan_shape is None or r.scan_shape[1] == scan.shape[1])
                  and not other_scanner(found.scanner.get(r.record_id, {}), scan.meta)]
        return await self._compare(scan, [found.prepared[0], *second], label)  # a second of another width or scanner: not used

    def _not_found(self, identities: Sequence[Identity]) -> tuple[HistoryCode, str]:
        """Why no history was found: no vehicle identity read, a fetch still running, or every fetch ended without
        one (the hub not asked or not answering, nothing cached)."""
        fetches = [self._fetches.get(identity_key(i.kind, i.value)) for i in identities
                   if i.kind in HISTORY_KINDS and i.value.strip()]
        if not fetches:
            return "no_identity", "no plate, container number or UHF tag TID of the vehicle was read"
        if any(task is None or not task.done() for task in fetches):
            return "not_arrived", "no reference pass of this vehicle arrived before the scan ended"
        return "hub_unavailable", "the hub did not answer for this vehicle and the station holds no history of it"

    async def _compare(self, scan: Scan, prepared: list[tuple[Pass, Any]], label: str) -> History:
        start = time.perf_counter()
        ref = prepared[0][0]
        base = History(status="failed", identity=label, basis=ref.basis, reference_ids=[r.record_id for r, _ in prepared],
                       reference_scan=ref.scan_sha256)
        try:
            async with asyncio.timeout(self.config.compare_budget_s):  # the thread finishes unseen after it
                result = await asyncio.to_thread(self.compare, scan, [p for _, p in prepared])
        except TimeoutError:
            self.counts["over_budget"] += 1
            return not_compared(base.model_copy(update={"status": "over_budget"}), "over_budget", f"the comparison "
                                f"took longer than {self.config.compare_budget_s} s",
                                budget_ms=round(self.config.compare_budget_s * 1000))
        except (ModelError, ValueError, OSError) as exc:
            self.counts["failed"] += 1
            log.warning("history.compare_failed", reference=ref.record_id, error=str(exc))
            return not_compared(base, "compare_failed", f"the comparison with {ref.record_id} failed: {exc}",
                                reference=ref.record_id)
        self.counts["compared"] += 1
        regions, suppressed, detail = result["regions"], dict(result.get("suppressed", {})), ""
        if ref.basis == "same_type_empty":
            regions, dropped = container_only(regions)
            suppressed["not_the_container"] = dropped
            detail = (f"compared with {ref.record_id}, another container of size/type {ref.size_type} declared "
                      "empty: only changes on the container are kept")
        if len(prepared) > 1:
            detail = " ".join(filter(None, [detail, f"A change is reported when the second reference "
                                            f"({prepared[1][0].record_id}) shows it too."]))
        uncompared = [tuple(u) for u in result.get("uncompared", [])]
        if len(uncompared) > MAX_UNCOMPARED:
            detail = " ".join(filter(None, [detail, f"The {len(uncompared)} stretches not compared are shown as "
                                            f"{MAX_UNCOMPARED}, the nearest merged with the lines between them."]))
            uncompared = merged(uncompared)
        return History(status="compared", identity=label, basis=ref.basis, reference_ids=base.reference_ids,
                       reference_scan=ref.scan_sha256, registration=result["registration"],
                       regions=[HistoryChange(**r) for r in regions], suppressed=suppressed, uncompared=uncompared,
                       compare_ms=round((time.perf_counter() - start) * 1000, 1), detail=detail)

    async def _fetch(self, kind: str, value: str, key: str, size_type: str | None = None) -> Found | None:
        """The hub's answer and the reference scans (kept in the cache); the cache's when the hub fails."""
        if self.hub is not None:
            try:
                return await self._from_hub(self.hub, kind, value, key, size_type)
            except HistoryUnavailable as exc:
                self.counts["hub_failed"] += 1
                log.warning("history.hub_unavailable", kind=kind, error=str(exc))
        try:
            held = await asyncio.to_thread(self.cache.get, key)
            if held is None:
                return None
            answer, scans = held
            since = time.time() - self.config.max_age_days * DAY  # the hub applies it to what it sends
            refs = as_passes(answer["references"], "references", reference=True)
            found = Found(kind, value, as_passes(answer["passes"], "passes"),
                          tuple(r for r in refs if r.decided_ts >= since), scans, "cache")
        except (OSError, KeyError, TypeError, ValueError) as exc:  # a damaged cache entry is no history
            self.counts["cache_unreadable"] += 1
            log.warning("history.cache_unreadable", kind=kind, error=repr(exc))
            return None
        self.counts["from_cache"] += 1
        return await self._prepared(found)

    async def _from_hub(self, hub: HubHistory, kind: str, value: str, key: str, size_type: str | None) -> Found:
        answer = await hub.answer(kind, value, size_type)
        try:
            refs = as_passes(answer["references"], "references", reference=True)
            passes = as_passes(answer["passes"], "passes")
        except KeyError as exc:
            raise HistoryUnavailable(f"the hub's history of {kind} {value!r} has no {exc.args[0]}") from exc
        except (TypeError, ValueError) as exc:
            raise HistoryUnavailable(f"the hub's history of {kind} {value!r} is malformed: {exc}") from exc
        scans: dict[str, bytes] = {}
        for ref in refs:
            sha = ref.scan_sha256 or ""
            held = await asyncio.to_thread(self.cache.scan, sha)
            try:
                scans[sha] = held if held is not None else await hub.scan(sha, ref.scan_size)
            except HistoryUnavailable as exc:  # the answer stands (its outcomes are news); this reference is not held
                self.counts["scan_unavailable"] += 1
                log.warning("history.scan_unavailable", reference=ref.record_id, error=str(exc))
        try:
            await asyncio.to_thread(self.cache.put, key, answer, scans)
        except OSError as exc:  # a full disk: the answer stands (its passes are news), its scans are not held
            self.counts["cache_unwritable"] += 1
            log.error("history.cache_not_written", kind=kind, error=str(exc))
            scans = {}
        self.counts["from_hub"] += 1
        paths = {sha: self.cache.root / key / f"{sha}.npz" for sha in scans}
        return await self._prepared(Found(kind, value, passes, refs, paths, "hub"))

    async def _prepared(self, found: Found) -> Found:
        """The history with its newest references whose scan is held prepared (off the event loop: the newest, and
        the next of the same basis to corroborate it), so that the comparison after the scan has only the current
        scan to work on; unprepared when the newest one's scan cannot be read, and without the second when its scan
        cannot (logged). A reference whose scan did not arrive is passed over."""
        held = [r for r in found.references if (r.scan_sha256 or "") in found.scans]
        prepared: list[tuple[Pass, Any]] = []
        scanner: dict[str, dict[str, Any]] = {}
        for ref in [r for r in held if r.basis == held[0].basis][:CORROBORATING]:
            path = found.scans[ref.scan_sha256 or ""]
            try:
                made, scanner[ref.record_id] = await asyncio.to_thread(self._prepare_file, path)
                prepared.append((ref, made))
            except (ModelError, ValueError, OSError) as exc:
                self.counts["reference_unreadable"] += 1
                log.warning("history.reference_unreadable", reference=ref.record_id, error=str(exc))
                break
        return replace(found, prepared=tuple(prepared), scanner=scanner)

    def _prepare_file(self, path: Path) -> tuple[Any, dict[str, Any]]:
        reference = load_scan(path)
        return self.prepare(reference), {k: reference.meta[k] for k in SCANNER if k in reference.meta}


def open_history(config: HistorySection, data_dir: Path, client: httpx.AsyncClient | None) -> VehicleHistory:
    """The station's history service; without a hub URL or client it answers from its cache only."""
    cache = HistoryCache(data_dir / "history", config.cache_entries, config.cache_bytes)
    hub = HubHistory(client, config) if client is not None and config.hub_url else None
    return VehicleHistory(config, cache, hub)


def hub_client(config: HistorySection) -> httpx.AsyncClient:
    """An HTTP client presenting this station's token (read from `token_file`) to the hub."""
    headers = {}
    if config.token_file is not None:
        try:
            token = config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise HistoryUnavailable(f"the hub token file {config.token_file} cannot be read: {exc.strerror}") from exc
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(headers=headers)
