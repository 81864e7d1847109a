"""The station side of risk bundles: receive, verify, keep, apply without pausing inspections, ack.

    runtime = RiskRuntime.start(station, cfg, data_dir)        # reloads data_dir/risk/ (blocking)
    async with RiskReceiver(sync_cfg, station, runtime):       # cpe/v1/{s}/risk -> .../risk/ack
        assessment = runtime.evaluate(facts)                   # any thread; never waits for a swap

A bundle arrives in chunks (central_sync.risk_delivery); joined and hash-checked, it is opened
with the pinned risk keys (`[risk] keys`, key id -> PEM file): a bad signature, an unknown key, a
replayed or older version, an expired one, a delta on another base are refused with the
BundleError code, counted, logged in one sentence and reported in the ack; the last good bundle
runs on. An accepted one is applied in a worker thread (BundleState.apply builds a new index),
written to data_dir/risk/ and then swapped in by one reference assignment, so an evaluation in
progress finishes on the old index and the next one uses the new. At start the files are opened
again (expired ones too: the station runs on its last good bundle, stale; one issued after the
clock's time too: the clock may be behind until it is set) in version order: the snapshot, then its
deltas; a file that no longer opens is refused, counted, renamed `.refused` (kept as it is when it
may open later: its key not pinned now, a read error), and what loaded before it runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from central_sync.commands import CommandLink, load_public_key
from central_sync.config import BrokerConfig
from central_sync.errors import SyncError, WireFormatError
from central_sync.protocol import ROOT
from central_sync.risk_delivery import RISK_LEAF, RiskAck, RiskChunk, decode_chunk
from central_sync.schema import Identity
from edge.datadir import fsync_dir
from edge.identity import conflicts
from risk.bundle import Bundle, Declaration, open_bundle
from risk.engine import Assessment, BundleState, Engine, Facts
from risk.errors import BundleError, RiskError

log = structlog.get_logger("edge.risk")
SUFFIX = ".cperb"
TOO_LARGE = "too_large"
"""The ack code of an envelope larger than `[risk] max_bundle_bytes` (refused before it is joined)."""
MAY_OPEN_LATER = ("unknown_key",)
"""Refusals of a stored file that a later start may not repeat (its key pinned again): the file is kept."""


class RiskConfig(BaseModel):
    """`[risk]` of the station config; without keys every bundle is refused (`unknown_key`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: dict[str, Path] = Field(default_factory=dict, description="key id -> the hub's Ed25519 risk public key (PEM)")
    seed: str | None = Field(None, min_length=1, max_length=128,
                             description="random selection seed, recorded with every draw; default: the station id")
    max_bundle_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="larger bundles are refused")
    timezone: str = Field("UTC", description="the station's local time zone, for rules on the hour and weekday")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$",
                                description="ISO 3166 alpha-2 country of the station: an item's route is its "
                                            "declaration's origin and this (CN-HK); without it no item has a route")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"time zone {value!r} is not known") from exc
        return value


class BundleFiles:
    """data_dir/risk/: the snapshot and the deltas on top of it, `{version:012d}-{kind}.cperb`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def stored(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{SUFFIX}"))

    def save(self, bundle: Bundle, envelope: bytes) -> None:
        """Write durably (temp file, fsync, rename, fsync of the folder: the new name is on disk before a snapshot
        drops the files it replaces, so a power cut never leaves the station with neither)."""
        path = self.folder / f"{bundle.version:012d}-{bundle.kind}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(envelope)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(self.folder)
        if bundle.kind == "snapshot":
            for old in self.stored():
                if old != path and old.name < path.name:
                    old.unlink()

    def refuse(self, path: Path) -> None:
        path.rename(path.with_name(path.name + ".refused"))


def load_keys(cfg: RiskConfig) -> dict[str, Ed25519PublicKey]:
    """The pinned keys that can be read; an unreadable one is logged and left out (its bundles are refused)."""
    keys = {}
    for key_id, path in cfg.keys.items():
        try:
            keys[key_id] = load_public_key(path)
        except SyncError as exc:
            log.error("risk.key_unreadable", key_id=key_id, error=str(exc))
    return keys


class RiskRuntime:
    """The bundle the station runs and the engine that evaluates against it; counters for metrics."""

    def __init__(self, station: str, keys: dict[str, Ed25519PublicKey], files: BundleFiles, seed: str,
                 timezone: str = "UTC", max_bundle_bytes: int = 256 * 1024 * 1024, country: str = "") -> None:
        self.station, self.keys, self.files, self.max_bundle_bytes = station, keys, files, max_bundle_bytes
        self.engine = Engine(BundleState.empty(), seed=seed, tz=timezone, country=country)
        self.sha256: str | None = None  # of the last envelope applied (the hub's delivery id)
        self.timing: dict[str, float] = {}  # of the last bundle received: open_s (verify, inflate, parse), apply_s
        self.counters: Counter[str] = Counter()
        self._last_refusal: tuple[str, str] | None = None  # (sha256, code): a resend of it is counted once
        self._apply = threading.Lock()  # one bundle applied at a time; evaluations never take it

    @classmethod
    def start(cls, station: str, cfg: RiskConfig, data_dir: Path) -> "RiskRuntime":
        runtime = cls(station, load_keys(cfg), BundleFiles(Path(data_dir) / "risk"), cfg.seed or station, cfg.timezone,
                      cfg.max_bundle_bytes, cfg.country or "")
        runtime.reload()
        return runtime

    # ---- evaluation ------------------------------------------------------------------------
    def evaluate(self, facts: Facts) -> Assessment:
        """Never waits: a bundle being applied meanwhile is swapped in by one assignment."""
        return self.engine.evaluate(facts)

    @property
    def version(self) -> int | None:
        return self.engine.state.version

    def status(self, now: float | None = None) -> dict:
        """The StatusMsg fields: risk_enabled, risk_version, risk_stale, risk_expires_at."""
        state = self.engine.state
        return {"risk_enabled": True, "risk_version": state.version, "risk_stale": state.stale(time.time() if now is None else now),
                "risk_expires_at": state.expires_at}

    # ---- bundles ---------------------------------------------------------------------------
    def reload(self, now: float | None = None) -> None:
        """Apply the stored files in order (blocking; at start). Their times are not held against them (they were
        checked when they arrived; the clock may be behind at start). A file that can never apply is set aside
        (`.refused`); one that may later (its key not pinned now, unreadable now) stays for the next start."""
        now = time.time() if now is None else now
        for path in self.files.stored():
            try:
                data = path.read_bytes()
                self._swap(open_bundle(data, self.keys, now=now, current=self.version, allow_expired=True,
                                       allow_future=True), data)
            except (OSError, RiskError) as exc:
                kept = isinstance(exc, OSError) or isinstance(exc, BundleError) and exc.code in MAY_OPEN_LATER
                self.counters["refused_stored"] += 1
                log.error("risk.stored_bundle_refused", station=self.station, file=str(path),
                          error=f"stored risk bundle {path.name} cannot be applied and is "
                                f"{'kept for the next start' if kept else 'set aside'}: {exc}")
                if not kept:
                    self.files.refuse(path)
                break
        log.info("risk.loaded", station=self.station, version=self.version, expires_at=self.engine.state.expires_at)

    def receive(self, version: int, envelope: bytes, now: float | None = None) -> RiskAck:
        """Open, apply, keep and swap one envelope (blocking: run it in a worker thread); the ack to send."""
        now = time.time() if now is None else now
        sha = hashlib.sha256(envelope).hexdigest()
        with self._apply:
            if sha == self.sha256:  # the version acked is the one the station runs (signed), not the chunk header's
                self.counters["duplicate"] += 1
                return RiskAck(version=self.version or version, sha256=sha, outcome="applied")
            t0 = time.perf_counter()
            try:
                bundle = open_bundle(envelope, self.keys, now=now, current=self.version)
                t1 = time.perf_counter()
                self._swap(bundle, envelope, keep=True)
            except BundleError as exc:
                return self._refused(version, sha, exc.code, str(exc))
            except RiskError as exc:
                return self._refused(version, sha, "bad_format", str(exc))
            except OSError as exc:
                return self._refused(version, sha, "not_stored", f"risk bundle {version} cannot be written: {exc}")
        self.counters["applied"] += 1
        self.timing = {"open_s": round(t1 - t0, 3), "apply_s": round(time.perf_counter() - t1, 3)}
        applied = self.version if self.version is not None else version  # signed: a header cannot claim another
        log.info("risk.applied", station=self.station, version=applied, sha256=sha[:12], bytes=len(envelope),
                 expires_at=self.engine.state.expires_at, **self.timing)
        return RiskAck(version=applied, sha256=sha, outcome="applied")

    def _swap(self, bundle: Bundle, envelope: bytes, keep: bool = False) -> None:
        state = self.engine.state.apply(bundle)  # a new index; the running one is untouched
        if keep:
            self.files.save(bundle, envelope)
        self.engine.swap(state)
        self.sha256 = hashlib.sha256(envelope).hexdigest()

    def _refused(self, version: int, sha: str, code: str, why: str) -> RiskAck:
        """Refused, checked again each time it comes (a key may have been added meanwhile); the same envelope
        refused for the same reason again (the hub resends what is not acknowledged) counts as `repeat_refused`."""
        again = self._last_refusal == (sha, code)
        self.counters["repeat_refused" if again else f"refused_{code}"] += 1
        self._last_refusal = (sha, code)
        log.warning("risk.refused", station=self.station, version=version, code=code,
                    detail=f"risk bundle {version} ({sha[:12]}) refused ({code}); version "
                           f"{self.version} runs on: {why}")
        return RiskAck(version=version, sha256=sha, outcome="refused", code=code)


IDENTIFIED_STATIONS = ("gantry",)
"""Station kinds whose items (vehicles, containers) each carry a plate or container code: one with no identity
read at all is amber (risk.engine.IDENTITY_UNREAD); a conveyor's bags need none."""
Known = Callable[[Sequence[Identity]], Mapping[str, int | str | None]]
"""The history facts of what the station fetched so far for an item's identities, never waiting
(VehicleHistory.facts)."""


@dataclass(frozen=True)
class RiskCheck:
    """The inspection's view of risk: an item's facts, evaluated against the bundle the station runs.

    `history` (a station with history configured) gives the history facts from the fetch started when the
    identity was read; an answer that has not arrived yet is unknown (None), as on a station without history.
    """

    runtime: RiskRuntime
    station: str
    station_kind: str
    history: Known | None = None

    def assess(self, item_id: str, identities: Sequence[Identity], verdict: str = "pending",
               labels: Sequence[str] = (), load_present: bool | None = None, at: float | None = None,
               container_item: bool = False) -> Assessment:
        """`verdict` "pending" before the detector's outcome; the declaration is the bundle's, by container or plate.
        `container_item`: the item is a container, so a container camera that saw no code, where none read one, is a
        failed read."""
        past = self.history(identities) if self.history is not None else {}
        # a container camera that saw no code at all is no failed read on a vehicle (most carry no container); on a
        # container item whose code no camera read it is: the code was covered, its watchlists could not be checked
        covered = container_item and not any(i.kind == "container" and i.value for i in identities)
        read = tuple((i.kind, i.value) for i in identities
                     if covered or not (i.kind == "container" and i.status == "unread"))
        return self.runtime.evaluate(Facts(
            item_id=item_id, at=time.time() if at is None else at,
            identities=read, station_id=self.station,
            station_kind=self.station_kind, detector_verdict=verdict, detector_labels=tuple(labels),
            load_present=load_present, identity_expected=self.station_kind in IDENTIFIED_STATIONS,
            identity_conflicts=len(conflicts(identities)),
            history_passes=cast(int | None, past.get("history.passes")),
            history_seizures=cast(int | None, past.get("history.seizures")),
            history_last_outcome=cast(str | None, past.get("history.last_outcome"))))


    def declaration(self, identities: Sequence[Identity]) -> Declaration | None:
        """The declaration the running bundle carries for the item's container (first) or plate."""
        return self.runtime.engine.state.declaration(tuple((i.kind, i.value) for i in identities))

    def declarations(self, identities: Sequence[Identity]) -> list[Declaration | None]:
        """The declaration the running bundle carries for each container code read (None for one it carries none
        for); when it carries one for none of them, the plate's (or None) alone."""
        state = self.runtime.engine.state
        found = [state.declaration((("container", i.value),)) for i in identities if i.kind == "container" and i.value]
        return found if any(found) else [self.declaration(identities)]

    @property
    def declares(self) -> bool:
        """Whether the running bundle carries declarations: the station then looks each item's up."""
        return bool(self.runtime.engine.state.declarations)


class Assembler:
    """Joins the chunks of envelopes, at most KEEP_PARTIALS at a time (a stray chunk of another envelope no longer
    abandons the one under way), each holding at most its stated size; pure, counts what it drops."""

    KEEP_PARTIALS = 2

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.partials: dict[tuple[str, int, int], dict[int, bytes]] = {}  # (sha256, count, size) -> index -> bytes
        self.counters: Counter[str] = Counter()

    def add(self, head: RiskChunk, data: bytes) -> bytes | None:
        """The whole envelope once its last chunk arrived and its hash matches, else None."""
        key = (head.sha256, head.count, head.size)
        parts = self.partials.get(key, {})
        held = sum(len(part) for index, part in parts.items() if index != head.index)
        if head.size > self.max_bytes or head.index >= head.count or held + len(data) > head.size:
            # beyond the station's limit, or more bytes than the envelope says it has: memory held stays bounded
            self.counters["chunk_refused"] += 1
            log.warning("risk.chunk_refused", version=head.version, size=head.size, index=head.index, count=head.count,
                        held=held, chunk=len(data), max_bytes=self.max_bytes)
            return None
        if key not in self.partials:
            while len(self.partials) >= self.KEEP_PARTIALS:
                self.partials.pop(next(iter(self.partials)))
                self.counters["abandoned"] += 1
            self.partials[key] = parts
        parts[head.index] = data
        if len(parts) < head.count:
            return None
        del self.partials[key]
        envelope = b"".join(parts[i] for i in range(head.count))
        if len(envelope) != head.size or hashlib.sha256(envelope).hexdigest() != head.sha256:
            self.counters["bad_hash"] += 1  # not acknowledged: the hub sends it again
            log.warning("risk.bad_hash", version=head.version, size=len(envelope), expected=head.size)
            return None
        return envelope


class Receiving(Protocol):
    """What a receiver hands whole envelopes to (RiskRuntime; edge.model_rollout.Rollout for model packages)."""

    max_bundle_bytes: int
    counters: Counter[str]

    def receive(self, version: int, envelope: bytes, now: float | None = None) -> RiskAck: ...


class RiskReceiver:
    """Subscribes to the station's risk topic; applies off the event loop; acks each envelope.

    `leaf` names the topic (`cpe/v1/{station}/{leaf}`, acks on `{leaf}/ack`) and the broker connection
    (`{username}.{leaf}`): `model` carries signed model packages the same way (edge.model_rollout).
    """

    def __init__(self, broker: BrokerConfig, station: str, runtime: Receiving, queue_max: int = 2,
                 leaf: str = RISK_LEAF) -> None:
        self.station, self.runtime, self.leaf = station, runtime, leaf
        self.assembler = Assembler(runtime.max_bundle_bytes)
        self.link = CommandLink(broker, f"{station}-{leaf}", [f"{ROOT}/{station}/{leaf}"], self._arrived, link=leaf,
                                on_ready=self._ready)
        self.counters = runtime.counters
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(maxsize=queue_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "RiskReceiver":
        self._loop = asyncio.get_running_loop()
        await self.link.__aenter__()
        self._task = asyncio.create_task(self._work(), name=f"{self.leaf}-{self.station}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.link.__aexit__(exc_type, exc, tb)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _ready(self) -> None:
        """On paho's thread, subscribed (at start, after a reconnect): tell the hub, which sends at once what
        it sent before the subscription (it would otherwise wait for its resend period)."""
        ready = RiskAck(version=0, sha256="0" * 64, outcome="ready")
        self.link.publish(f"{ROOT}/{self.station}/{self.leaf}/ack", ready.model_dump_json().encode())

    def _arrived(self, topic: str, payload: bytes) -> None:
        """On paho's thread: join chunks; a whole envelope goes to the event loop's queue."""
        try:
            head, data = decode_chunk(payload)
        except WireFormatError as exc:
            self.counters["bad_chunk"] += 1
            log.warning("risk.bad_chunk", station=self.station, error=str(exc))
            return
        envelope = self.assembler.add(head, data)
        if envelope is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, head.version, envelope)
        elif head.index == 0 and head.size > self.assembler.max_bytes:
            self._too_large(head)

    def _too_large(self, head: RiskChunk) -> None:
        """Refuse an envelope larger than the station takes, once per sending (its first chunk): unanswered, the hub
        sent all of it again every resend period for good."""
        self.counters["refused_too_large"] += 1
        log.warning("risk.refused", station=self.station, version=head.version, code=TOO_LARGE,
                    detail=f"{self.leaf} {head.version} ({head.sha256[:12]}) refused ({TOO_LARGE}): {head.size} bytes, "
                           f"more than the {self.assembler.max_bytes} this station takes")
        ack = RiskAck(version=head.version, sha256=head.sha256, outcome="refused", code=TOO_LARGE)
        self.link.publish(f"{ROOT}/{self.station}/{self.leaf}/ack", ack.model_dump_json().encode())

    def _enqueue(self, version: int, envelope: bytes) -> None:
        try:
            self._queue.put_nowait((version, envelope))
        except asyncio.QueueFull:  # the hub sends it again when no ack comes
            self.counters["dropped_queue_full"] += 1
            log.warning("risk.dropped", station=self.station, version=version, reason="queue_full")

    async def _work(self) -> None:
        while True:
            version, envelope = await self._queue.get()
            try:
                ack = await asyncio.to_thread(self.runtime.receive, version, envelope)
            except Exception:  # a defect on one envelope must not end the worker: later ones go unanswered
                self.counters["failed"] += 1
                log.exception("risk.receive_failed", station=self.station, version=version, bytes=len(envelope))
                continue
            self.link.publish(f"{ROOT}/{self.station}/{self.leaf}/ack", ack.model_dump_json().encode())
