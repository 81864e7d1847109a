"""The station's retention state: the hub's signed policy and legal holds, kept across restarts.

The hub publishes one signed state for every station, retained on `cpe/v1/retention`
(central_sync/retention.py); the station's command link hands it here. It is verified against the hub key
the station pins for commands, refused when older than the one the station runs (a replay can never lift
a hold), written to `data_dir/retention.json` (temp file, fsync, rename) and swapped in by one reference
assignment. Until the first state arrives the station keeps everything (or applies `[store]
retention_days` to every verdict when a config sets it). A file that no longer parses is renamed
`.refused` and the station keeps everything again until the hub's next message.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from central_sync import retention as r

log = structlog.get_logger("edge.retention")

FILE = "retention.json"


class StationRetention:
    """The state the store prunes by, and the holds the screen shows."""

    def __init__(self, data_dir: Path, fallback_days: float | None = None) -> None:
        self.path = Path(data_dir) / FILE
        self.fallback_days = fallback_days
        self.state: r.RetentionState | None = None
        self.holds = r.Holds.of([])
        self.counters: Counter[str] = Counter()
        self.refused_file = False  # the kept state did not parse: keep everything until the hub's next state
        # held while a new state is swapped in, and by the store while it deletes what the state let go: a hold
        # arriving (on the sync thread) between the choice and the deletion is seen before anything goes
        self.lock = threading.Lock()

    def load(self) -> "StationRetention":
        """The state kept by the last run, if any (once: a screen's store shares the daemon's)."""
        if self.state is not None:
            return self
        try:
            self._swap(r.RetentionState.model_validate_json(self.path.read_bytes()))
        except FileNotFoundError:
            pass
        except (ValidationError, ValueError, OSError) as exc:
            self.counters["refused_stored"] += 1
            self.refused_file = True
            log.error("retention.stored_refused", path=str(self.path), error=str(exc).splitlines()[0])
            self.path.rename(self.path.with_suffix(".refused"))
        return self

    def effective(self) -> r.RetentionState | None:
        """The hub's state, else the config's fallback for every verdict, else None (keep everything). Not the
        fallback after the kept state failed to parse: it held the legal holds, which the fallback has none of."""
        if self.state is not None or self.fallback_days is None or self.refused_file:
            return self.state
        days = self.fallback_days
        return r.new_state(1, r.RetentionPolicy(clear_days=days, suspect_days=days, manual_days=days), [], [], 0.0)

    def receive(self, key: Ed25519PublicKey | None, data: bytes) -> str:
        """Verify, keep and apply a state from the hub; the outcome (`applied`, `same`, `older` or a refusal code)."""
        if key is None:
            return self._refuse("no_key", "this station pins no hub key and takes no retention state")
        try:
            state = r.verify(key, data)
        except r.RetentionError as exc:
            return self._refuse(exc.code, str(exc))
        running = self.state.version if self.state else 0
        if state.version <= running:
            outcome = "same" if state.version == running else "older"
            self.counters[outcome] += 1
            return outcome
        from edge.stations import statefile  # here: edge.stations imports the store, which imports this module

        with self.lock:
            try:
                statefile.save(self.path, state.model_dump(mode="json"))
            except OSError as exc:
                return self._refuse("not_stored",
                                    f"retention state {state.version} could not be written to {self.path}: {exc}")
            self._swap(state)
        self.counters["applied"] += 1
        log.info("retention.applied", version=state.version, holds=len(state.holds),
                 policy=state.policy.model_dump() if state.policy else None)
        return "applied"

    def hold_of(self, body: dict[str, Any]) -> str | None:
        """What holds this record (`record`, `plate`, `container`), or None."""
        return self.holds.match(body)

    def status(self) -> dict[str, Any]:
        return {"retention_version": self.state.version if self.state else None}

    def _swap(self, state: r.RetentionState) -> None:
        self.holds = r.Holds.of(state.holds)
        self.state = state
        self.refused_file = False

    def _refuse(self, code: str, message: str) -> str:
        self.counters[f"refused_{code}"] += 1
        log.warning("retention.refused", code=code, error=message)
        return code
