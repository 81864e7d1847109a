"""The station side of a model roll-out: verify, install into the inactive slot, canary, promote or roll back.

    rollout = Rollout.start(station, cfg, data_dir, hub_key)   # reads data_dir/models/state.json; a start on canary counts
    engine = await load_engine(rollout.model_section(config.model), ...)   # the active slot, if any
    rollout.attach(engine, pool)                         # candidates load as the engine's models do (threads, thresholds)
    await rollout.resume()                               # a candidate on canary is loaded again (or rolled back)
    async with RiskReceiver(sync_cfg, station, rollout, leaf="model"):   # cpe/v1/{s}/model -> .../model/ack

A package arrives in chunks with its roll-out header (central_sync.model_delivery: the criteria, signed by
the hub's command key, which a station pinning that key requires; without it, the default criteria apply). In a worker thread it is verified with the pinned model-signing keys
(`[rollout] keys`): unsigned, unknown key, bad signature, a file whose sha256 is not the signed one, a
downgrade the admin did not allow, a model not made for this station's scans: each is refused before any
byte reaches onnxruntime, counted, logged in one sentence and reported in the ack and the status. Accepted, it is written into the inactive of two
slots (`data_dir/models/A`, `B`), loaded (the runtime checks its hash again) with the station's model
settings (`[model] threads`, `providers`, the thresholds in force) and run as the shadow model on live
items under the same thresholds as the active model: verdicts stay the active model's. Each compared item counts towards the roll-out's
criteria: promoted when at least `min_items` agree at `min_agreement`, the candidate flagged `min_agreement` of the
items the active model flagged (of at least one), with a p95 latency within `p95_ms`; rolled back on a load failure, on more than `max_misses` items over `p95_ms`, when
`max_items` pass without promotion, or on a crash loop: the state is persisted, so each start of the
process during a canary counts, and more than `crash_limit` starts roll back (only the process restarts,
never the machine). Each slot keeps the package's signature.json and is verified again at every start: one
edited or unsigned since is not run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.model_delivery import Criteria, HeaderSignatureError, Opened, RolloutError, open_envelope
from central_sync.protocol import ModelRollStatus
from central_sync.risk_delivery import RiskAck
from edge.datadir import fsync_dir
from edge.risk import RiskConfig, load_keys
from models.applicability import metadata_problem
from models.detection import Detection
from models.errors import ModelError, PackageError
from models.manifest import load_manifest
from models.scan import Scan
from models.signing import Package, is_downgrade, open_folder, open_package

if TYPE_CHECKING:  # onnxruntime is loaded with the first candidate, not with the station's config
    from contextlib import AsyncExitStack

    from edge.config import ModelSection, StationConfig
    from edge.detector import Engine
    from edge.metrics import StationMetrics
    from edge.store import StoreWriter
    from models.applicability import ScanFacts
    from models.pool import InferencePool
    from models.runtime import Detector
    from models.shadow import Compared, ShadowRunner

log = structlog.get_logger("edge.model_rollout")
REMEMBERED_REFUSALS = 64   # refused envelopes whose answer is kept for their repeats (the latest)
Phase = Literal["idle", "canary", "promoted", "rolled_back", "refused"]
Slot = Literal["A", "B"]


class RolloutConfig(BaseModel):
    """`[rollout]` of the station config: the model-signing keys it pins (never the risk or command key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: dict[str, Path] = Field(default_factory=dict, description="key id -> the model-signing Ed25519 public key (PEM)")
    max_package_bytes: int = Field(1024 * 1024 * 1024, ge=1024, description="larger packages are refused")
    crash_limit: int = Field(2, ge=0, le=100, description="starts of the process during one canary before it rolls back")


ROLLED_BACK_KEPT = 50  # signed packages a station remembers it rolled back


class SlotState(BaseModel):
    """data_dir/models/state.json: which slot is active, which is on canary, and why the last one ended."""

    model_config = ConfigDict(extra="forbid")

    active: Slot | None = None  # None: the configured (or shipped) model
    candidate: Slot | None = None
    rollout: int | None = None
    phase: Phase = "idle"
    criteria: Criteria = Criteria()
    starts: int = 0  # starts of the process during this canary
    reason: str | None = None
    candidate_signed: str | None = None  # the candidate's Package.identity (sha256 of its signed statement)
    # signed packages this station rolled back, newest last: Package.identity; entries written before it, the
    # sha256 of the package's bytes, are still read and matched
    rolled_back: list[str] = Field(default_factory=list)
    # written by the release that adopted slots without signature.json (a state.json of its own, slots_signed false,
    # made any unsigned slot run); still read, never used: an unsigned slot is never run
    slots_signed: bool = False
    unsigned_ok: list[Slot] = Field(default_factory=list)


class Canary:
    """The figures of one candidate on live items, and the decision they lead to (pure).

    Agreement over all items alone promoted a candidate that finds nothing: on a station where the active model
    flags 2 items in 50, it agrees on the 48 clean ones (96 %). So a promotion also needs the candidate to have
    flagged at least `min_agreement` of the items the active model flagged, and at least one such item seen.
    """

    def __init__(self, criteria: Criteria) -> None:
        self.criteria = criteria
        self.items = self.agree = self.misses = 0
        self.flagged = self.caught = 0  # items the active model flagged; of those, the ones the candidate flagged too
        self.seconds: list[float] = []

    def observe(self, agree: bool, seconds: float, caught: bool | None
                ) -> tuple[Literal["continue", "promote", "rollback"], str]:
        """One compared item: whether both found the same classes, the candidate's seconds, and, where the active
        model flagged the item, whether the candidate flagged it too (None: the active model found nothing)."""
        c = self.criteria
        self.items += 1
        self.agree += agree
        self.flagged += caught is not None
        self.caught += caught is True
        self.seconds.append(seconds)
        if seconds * 1000 > c.p95_ms:
            self.misses += 1
            if self.misses > c.max_misses:
                return "rollback", (f"the candidate missed its latency budget of {c.p95_ms:g} ms on {self.misses} "
                                    f"items, more than the {c.max_misses} allowed")
        if self.items >= c.min_items and self.agreement >= c.min_agreement and self.p95_ms <= c.p95_ms \
                and self.flagged and self.caught_share >= c.min_agreement:
            return "promote", (f"the candidate agreed with the active model on {self.agreement:.1%} of {self.items} items "
                               f"and flagged {self.caught} of the {self.flagged} items it flagged, with p95 {self.p95_ms:.1f} ms")
        if self.items >= c.give_up_after:
            return "rollback", (f"after {self.items} items the candidate agreed on {self.agreement:.1%} (needed "
                                f"{c.min_agreement:.1%}) and flagged {self.caught} of the {self.flagged} items the active "
                                f"model flagged (needed {c.min_agreement:.1%}, of at least one) with p95 "
                                f"{self.p95_ms:.1f} ms (budget {c.p95_ms:g} ms)")
        return "continue", ""

    @property
    def agreement(self) -> float:
        return self.agree / self.items if self.items else 0.0

    @property
    def caught_share(self) -> float:
        """Share of the items the active model flagged that the candidate flagged too."""
        return self.caught / self.flagged if self.flagged else 0.0

    @property
    def p95_ms(self) -> float:
        if len(self.seconds) < 2:
            return self.seconds[0] * 1000 if self.seconds else 0.0
        return statistics.quantiles(self.seconds, n=20, method="inclusive")[-1] * 1000


class Rollout:
    """The station's two model slots and the candidate on canary; a Shadow for the inspection."""

    def __init__(self, station: str, keys: dict[str, Ed25519PublicKey], folder: Path, cfg: RolloutConfig,
                 hub_key: Ed25519PublicKey | None = None) -> None:
        self.station, self.keys, self.folder, self.cfg = station, keys, folder, cfg
        self.hub_key = hub_key  # the hub's command key: roll-out headers must be signed with it
        self.max_bundle_bytes = cfg.max_package_bytes  # RiskReceiver's limit on a joined envelope
        self.counters: Counter[str] = Counter()
        self.state = SlotState()
        self.canary: Canary | None = None
        self.runner: ShadowRunner | None = None
        self.engine: Engine | None = None
        self.pool: InferencePool | None = None
        self._carried: dict[str, float] = {}  # the station's thresholds the candidate on canary runs under
        self._lock = threading.Lock()  # one package installed at a time; state writes
        # the same envelope refused again (the hub offers a roll-out when staged and again when the station
        # says it is ready): the same answer, counted as `repeat_refused`, not as another refusal; keyed by
        # what the answer depends on (the envelope, the active and candidate models; the keys are the session's);
        # the REMEMBERED_REFUSALS latest only (a hub sending garbage for days must not grow the daemon)
        self._refusals: dict[tuple[str, str | None, str | None], RiskAck] = {}

    @classmethod
    def start(cls, station: str, cfg: RolloutConfig, data_dir: Path, hub_key: Ed25519PublicKey | None = None) -> "Rollout":
        """Read the slots' state (blocking); a start during a canary counts, and too many roll it back."""
        folder = Path(data_dir) / "models"
        folder.mkdir(parents=True, exist_ok=True)
        rollout = cls(station, load_keys(RiskConfig(keys=cfg.keys)), folder, cfg, hub_key)
        rollout.state = rollout._read()
        rollout._verify_slots()
        if rollout.state.phase == "canary":
            rollout.state.starts += 1
            if rollout.state.starts > cfg.crash_limit:
                rollout._rollback(f"the station started {rollout.state.starts} times during the canary "
                                  f"(limit {cfg.crash_limit}): a crash loop")
            rollout._keep()  # a full disk must not keep the station from starting
        return rollout

    # ---- slots -----------------------------------------------------------------------------
    def slot_dir(self, slot: str) -> Path:
        return self.folder / slot

    def model_section(self, section: ModelSection) -> ModelSection:
        """The station's model settings with the active slot as its package, when one was promoted; thresholds
        naming classes the promoted model lacks are logged and left out (it would not load under them)."""
        if self.state.active is None:
            return section
        from edge.detector import carried_thresholds

        folder = self.slot_dir(self.state.active)
        try:
            thresholds = carried_thresholds(load_manifest(folder), section.thresholds)
        except ModelError:  # the engine's load says why it does not load
            thresholds = section.thresholds
        return section.model_copy(update={"dir": folder, "thresholds": thresholds})

    def _verify_slots(self) -> None:
        """Each slot in use is verified again as when it arrived (its signature.json against the pinned keys, the
        files' hashes against the signed statement): one edited or unsigned since is not run; the active one
        gives way to the configured model, a candidate is rolled back (not remembered as a rolled-back package:
        the package the hub signed may be sound)."""
        for slot in (self.state.active, self.state.candidate if self.state.phase == "canary" else None):
            if slot is None:
                continue
            try:
                open_folder(self.slot_dir(slot), self.keys)
            except PackageError as exc:
                # a slot installed by a release before slots kept their signature is unsigned too: nothing tells it
                # from one written by anyone who can write the data directory (a state.json saying so included)
                again = "; one installed before slots kept their signature is rolled out again" \
                    if exc.code == "unsigned" else ""
                self._unverified(slot, f"model slot {slot} does not verify against its signature ({exc.code}: {exc})"
                                       f"{again}")

    def _unverified(self, slot: Slot, why: str) -> None:
        self.counters["slot_unverified"] += 1
        if slot == self.state.candidate:
            self.state.candidate_signed = None
            self._rollback(why)
        else:
            self.state.active, self.state.reason = None, f"{why}; the configured model runs instead"
            self.state.phase = "canary" if self.state.phase == "canary" else "rolled_back"
        log.error("rollout.slot_unverified", station=self.station, slot=slot, error=self.state.reason)
        self._keep()

    def active_unloadable(self, why: str) -> None:
        """The promoted slot verified but did not load (a tile over `[model] max_tile_px`, no memory for it, an
        onnxruntime that cannot run it): it gives way to the configured model, at this start and the next."""
        slot = self.state.active
        self.counters["slot_unloadable"] += 1
        self.state.active = None
        self.state.reason = f"model slot {slot} does not load ({why}); the configured model runs instead"
        if self.state.phase != "canary":
            self.state.phase = "rolled_back"
        log.error("rollout.slot_unloadable", station=self.station, slot=slot, error=self.state.reason)
        self._keep()

    def _read(self) -> SlotState:
        path = self.folder / "state.json"
        try:
            return SlotState.model_validate_json(path.read_bytes()) if path.exists() else SlotState()
        except (OSError, ValidationError) as exc:
            self.counters["state_unreadable"] += 1
            log.error("rollout.state_unreadable", station=self.station, file=str(path),
                      error=f"model slot state {path} cannot be read; the configured model runs: {exc}")
            return SlotState()

    def _save(self) -> None:
        """Replace state.json atomically and durably (written, fsynced, renamed, the folder fsynced)."""
        path = self.folder / "state.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(self.state.model_dump_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(self.folder)

    # ---- wiring -----------------------------------------------------------------------------
    def attach(self, engine: Engine, pool: InferencePool) -> None:
        self.engine, self.pool = engine, pool

    async def resume(self) -> None:
        """After a restart during a canary: load the candidate again (a failure rolls back)."""
        if self.state.phase == "canary" and self.state.candidate is not None:
            await asyncio.to_thread(self._run_candidate, self.state.candidate)

    # ---- receive (worker thread) -----------------------------------------------------------
    def receive(self, version: int, envelope: bytes, now: float | None = None) -> RiskAck:
        """Verify, install into the inactive slot and start the canary (blocking); the ack to send."""
        sha = hashlib.sha256(envelope).hexdigest()
        with self._lock:
            active = self.engine.detector.manifest.sha256 if self.engine is not None and self.engine.detector is not None \
                else None
            seen = (sha, active, self._candidate_sha())
            if seen in self._refusals:
                self.counters["repeat_refused"] += 1
                return self._refusals[seen].model_copy(update={"version": version})
            try:
                opened = open_envelope(envelope)
                criteria = self._criteria(opened)
                package = open_package(opened.package, self.keys)
                signed = package.identity  # the signed statement, however the package's own header is spaced
                earlier = hashlib.sha256(opened.package).hexdigest()  # how state.json named them before
                if signed in self.state.rolled_back or earlier in self.state.rolled_back:  # no replay brings it back
                    raise PackageError("rolled_back", f"model {package.manifest.name} {package.manifest.version} "
                                                      f"(signed package {signed[:12]}) was rolled back on this station; "
                                                      f"trying it again takes a new signature")
                if self._admissible(package):
                    self.counters["duplicate"] += 1
                    self.state.rollout = version
                    self._save()
                    return RiskAck(version=version, sha256=sha, outcome="applied")
            except PackageError as exc:
                return self._remember(seen, self._refused(version, sha, exc.code, str(exc)))
            except HeaderSignatureError as exc:
                return self._remember(seen, self._refused(version, sha, "header_signature", str(exc)))
            except RolloutError as exc:
                return self._remember(seen, self._refused(version, sha, "bad_format", str(exc)))
            self.runner, self.canary = None, None  # a canary in progress ends: its slot is about to be overwritten
            slot: Slot = "B" if self.state.active == "A" else "A"
            try:
                self._release(slot)
                self._install(slot, package.write)
            except OSError as exc:
                return self._refused(version, sha, "not_stored", f"model package cannot be written to slot {slot}: {exc}")
            self.state = SlotState(active=self.state.active, candidate=slot, rollout=version, phase="canary",
                                   criteria=criteria, candidate_signed=signed,
                                   rolled_back=self.state.rolled_back)
            self._save()
            log.info("rollout.installed", station=self.station, rollout=version, slot=slot,
                     model=f"{package.manifest.name} {package.manifest.version}", sha256=package.manifest.sha256[:12])
            if not self._run_candidate(slot):
                return RiskAck(version=version, sha256=sha, outcome="refused", code="load_failed")
        self.counters["installed"] += 1
        return RiskAck(version=version, sha256=sha, outcome="applied")

    def _criteria(self, opened: Opened) -> Criteria:
        """The roll-out's criteria: as the hub signed them where its key is pinned (unsigned: refused); without
        the key, the defaults whatever the header says: anyone on the way could have eased them (one item to a
        promotion) or tightened them (a rollback after one item, and the signed package remembered as rolled back)."""
        if self.hub_key is not None:
            opened.verify(self.hub_key)
            return opened.header.criteria
        if opened.header.criteria != Criteria():
            self.counters["criteria_unsigned"] += 1
            log.warning("rollout.criteria_unsigned", station=self.station, rollout=opened.header.rollout,
                        asked=opened.header.criteria.model_dump(), applied=Criteria().model_dump(),
                        why="a roll-out's own criteria need a header signed by the hub's pinned key "
                            "([commands] hub_public_key); the defaults apply")
        return Criteria()

    def _admissible(self, package: Package) -> bool:
        """True when the package runs already (active or on canary); PackageError when it may not run here."""
        new = package.manifest
        active = self.engine.detector.manifest if self.engine is not None and self.engine.detector is not None else None
        if active is not None and new.sha256 == active.sha256 or new.sha256 == self._candidate_sha():
            return True
        if active is not None and is_downgrade(new.version, active.version) and not package.allow_downgrade:
            raise PackageError("downgrade", f"model {new.name} {new.version} is older than the active {active.name} "
                                            f"{active.version}; a downgrade needs an admin's signed allow_downgrade")
        problem = metadata_problem(new, self.engine.facts) if self.engine is not None else None
        if problem is not None:
            raise PackageError("not_applicable", f"model {new.name} {new.version} is not made for this station's "
                                                 f"scans: {problem}")
        return False

    def _candidate_sha(self) -> str | None:
        return self.runner.candidate.info.sha256 if self.runner is not None else None

    def _release(self, slot: Slot) -> None:
        """The candidate on canary in `slot` ends on disk before the slot is overwritten: a stop while the new package
        is written, or before the state naming it is, must not start a canary on a slot that state.json says holds
        another package (under that one's criteria and name)."""
        if self.state.candidate == slot:
            phase = "idle" if self.state.phase == "canary" else self.state.phase
            self.state = self.state.model_copy(update={"candidate": None, "candidate_signed": None, "starts": 0,
                                                       "phase": phase})
            self._save()

    def _install(self, slot: str, write: Callable[[Path], None]) -> None:
        """Write the package into `slot` by way of a temporary folder renamed over it; each step durable (the files
        and the temporary folder fsynced before the rename, the models folder after it)."""
        target, tmp = self.slot_dir(slot), self.folder / f"{slot}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        fsync_dir(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        fsync_dir(self.folder)

    def _run_candidate(self, slot: str) -> bool:
        """Load the candidate and put it on canary; a load failure rolls back at once."""
        from models.shadow import ShadowRunner

        if self.engine is None or self.pool is None:
            raise RuntimeError("Rollout.attach() must come before a candidate runs")
        try:
            detector = self.engine.under_station_thresholds(self.engine.load(self.slot_dir(slot)))
        except ModelError as exc:
            self.counters["rolled_back_load"] += 1
            self._rollback(f"the candidate in slot {slot} does not load: {exc}")
            self._keep()
            return False
        self.canary, self._carried = Canary(self.state.criteria), dict(self.engine.thresholds)
        runner = ShadowRunner(detector, self.pool)
        runner.on_compared = self._compared(runner)
        self.runner = runner
        log.info("rollout.canary", station=self.station, rollout=self.state.rollout, slot=slot,
                 model=f"{detector.info.name} {detector.info.version}", starts=self.state.starts)
        return True

    def _remember(self, seen: tuple[str, str | None, str | None], ack: RiskAck) -> RiskAck:
        """Keep a refusal's answer for its repeats; the oldest goes beyond REMEMBERED_REFUSALS."""
        self._refusals[seen] = ack
        while len(self._refusals) > REMEMBERED_REFUSALS:
            del self._refusals[next(iter(self._refusals))]
        return ack

    def _refused(self, version: int, sha: str, code: str, why: str) -> RiskAck:
        """Not installed. The roll-out is not marked answered: after a reconnect (say, once the key is pinned)
        the hub sends it again; within the session it does not."""
        self.counters[f"refused_{code}"] += 1
        self.state.reason = why
        if self.state.phase != "canary":
            self.state.phase = "refused"
        self._save()
        log.warning("rollout.refused", station=self.station, rollout=version, code=code, detail=why)
        return RiskAck(version=version, sha256=sha, outcome="refused", code=code)

    # ---- canary (event loop) ---------------------------------------------------------------
    def submit(self, station: str, scan: Scan, active: Sequence[Detection]) -> bool:
        """The inspection's decided scan: compared by the candidate on canary, if there is one."""
        runner, engine = self.runner, self.engine
        if runner is None:
            return False
        if engine is not None and engine.thresholds != self._carried:  # the hub's set_thresholds: both models
            runner.candidate, self._carried = engine.under_station_thresholds(runner.candidate), dict(engine.thresholds)
        return runner.submit(station, scan, active)

    def _compared(self, runner: ShadowRunner) -> Compared:
        def compared(agree: bool, seconds: float, caught: bool | None) -> None:
            if not self._lock.acquire(blocking=False):  # a package is being installed: this canary is ending
                self.counters["canary_item_skipped_busy"] += 1
                return
            try:
                canary = self.canary
                if canary is None or self.runner is not runner:
                    return  # a comparison that finished after its candidate was replaced or ended
                decision, why = canary.observe(agree, seconds, caught)
                if decision == "promote":
                    self._promote(runner.candidate, why)
                elif decision == "rollback":
                    self.counters["rolled_back_canary"] += 1
                    self._rollback(why)
                if decision != "continue":
                    self._keep()
            finally:
                self._lock.release()
        return compared

    def _keep(self) -> None:
        """Write the decision at once (on the event loop too: a few hundred bytes once per roll-out, and a stop right
        after a promotion must not bring the candidate back on canary). A failure (a full disk) is counted and
        logged, never raised: the station starts and inspects on with the state it holds."""
        try:
            self._save()
        except OSError as exc:
            self.counters["state_not_saved"] += 1
            log.error("rollout.state_not_saved", station=self.station,
                      error=f"model slot state {self.folder / 'state.json'} was not written ({exc}); the state in "
                            f"memory holds until the station restarts")

    def _promote(self, detector: Detector, why: str) -> None:
        if self.engine is not None:
            self.engine.use(detector)  # under the station's thresholds in force now
        self.counters["promoted"] += 1
        self.state.active, self.state.candidate, self.state.phase = self.state.candidate, None, "promoted"
        self.state.reason, self.runner, self.state.candidate_signed = why, None, None
        log.info("rollout.promoted", station=self.station, rollout=self.state.rollout, slot=self.state.active,
                 model=f"{detector.info.name} {detector.info.version}", why=why)

    def _rollback(self, why: str) -> None:
        log.warning("rollout.rolled_back", station=self.station, rollout=self.state.rollout,
                    slot=self.state.candidate, reason=why)
        self.state.candidate, self.state.phase, self.state.reason, self.runner = None, "rolled_back", why, None
        if self.state.candidate_signed is not None:  # refused if it comes again (ROLLED_BACK_KEPT remembered)
            self.state.rolled_back = [*self.state.rolled_back, self.state.candidate_signed][-ROLLED_BACK_KEPT:]
            self.state.candidate_signed = None

    # ---- status ----------------------------------------------------------------------------
    def status(self) -> dict:
        """The StatusMsg field `models` (central_sync.protocol.ModelRollStatus)."""
        detector = self.engine.detector if self.engine is not None else None
        runner, canary = self.runner, self.canary if self.state.phase == "canary" else None
        cand = runner.candidate.info if runner is not None else None
        return {"models": ModelRollStatus(
            rollout=self.state.rollout, phase=self.state.phase,
            active=f"{detector.info.name} {detector.info.version}" if detector else None,
            active_sha256=detector.info.sha256 if detector else None,
            candidate=f"{cand.name} {cand.version}" if cand else None, candidate_sha256=cand.sha256 if cand else None,
            items=canary.items if canary else 0, agreement=round(canary.agreement, 4) if canary and canary.items else None,
            p95_ms=round(canary.p95_ms, 2) if canary and canary.items else None,
            misses=canary.misses if canary else 0, reason=self.state.reason).model_dump()}



class RolloutCollector(Collector):
    """/metrics: packages by outcome, and the canary's figures while one runs."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily("edge_model_rollouts", "Model packages by outcome (installed, duplicate, "
                                       "refused_<code>, repeat_refused, criteria_unsigned, promoted, rolled_back_load|canary, slot_unverified,"
                                       " slot_unloadable)", labels=["outcome"])
        for outcome, n in sorted(self.rollout.counters.items()):
            outcomes.add_metric([outcome], n)
        yield outcomes
        m = self.rollout.status()["models"]
        for name, value, what in (("items", m["items"], "live items compared on canary"),
                                  ("agreement", m["agreement"], "share of them where both models found the same classes"),
                                  ("p95_ms", m["p95_ms"], "the candidate's p95 time per item, ms"),
                                  ("misses", m["misses"], "items over the roll-out's latency budget")):
            yield GaugeMetricFamily(f"edge_model_canary_{name}", f"The candidate on canary: {what}",
                                    value=float(value or 0))


# ---- the daemon's part -------------------------------------------------------------------------
async def load_station_engine(rollout: Rollout | None, section: ModelSection, station: str, store: StoreWriter,
                              pool: InferencePool, facts: ScanFacts) -> Engine:
    """The station's engine on the promoted slot when there is one (edge.detector.load_engine); a slot that does not
    load gives way to the configured model (`[model] dir` or the shipped one), which loads as if none was promoted."""
    from edge.detector import load_engine

    engine = await load_engine(rollout.model_section(section) if rollout else section, station, store, pool, facts)
    if engine.detector is None and rollout is not None and rollout.state.active is not None:
        await asyncio.to_thread(rollout.active_unloadable, engine.problem)
        engine = await load_engine(section, station, store, pool, facts)
    return engine


async def open_rollout(config: StationConfig) -> Rollout | None:
    """The station's model slots when `[rollout]` is configured (read before the engine loads its model)."""
    if config.rollout is None:
        return None
    from central_sync.commands import CommandError, load_public_key

    hub_key, path = None, config.commands.hub_public_key
    if path is not None:
        try:
            hub_key = await asyncio.to_thread(load_public_key, path)
        except CommandError as exc:  # as without the key: criteria no laxer than the defaults
            log.error("rollout.hub_key_unusable", station=config.station.id, error=str(exc))
    return await asyncio.to_thread(Rollout.start, config.station.id, config.rollout, config.station.data_dir, hub_key)


async def run_rollout(stack: AsyncExitStack, config: StationConfig, rollout: Rollout | None, engine: Engine,
                      pool: InferencePool, metrics: StationMetrics) -> None:
    """Resume a canary and take packages from the hub (`cpe/v1/{station}/model`); without a broker only the
    slots run. A link that cannot start is logged: the active model inspects on."""
    if rollout is None:
        return
    rollout.attach(engine, pool)
    metrics.registry.register(RolloutCollector(rollout))
    await rollout.resume()
    if config.sync is None:
        return
    from central_sync.errors import SyncError
    from edge.risk import RiskReceiver

    try:
        await stack.enter_async_context(RiskReceiver(config.sync, config.station.id, rollout, leaf="model"))
    except (SyncError, OSError, ValueError) as exc:
        log.error("rollout.unavailable", station=config.station.id,
                  error=f"model packages from the hub are off: {exc}")
