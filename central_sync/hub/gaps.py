"""Per-station seq gap detection: seqs missing below the highest committed one, twice in a row."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from central_sync import protocol as p
from central_sync.hub.store import HubStore

log = structlog.get_logger("central_sync.hub")
MAX_ASK = 1000


class GapChecker:
    """Remembers each station's contiguous prefix; asks for seqs that stay missing."""

    def __init__(self, store: HubStore, hub_id: str, send: Callable[[str, bytes], None],
                 max_bytes: Callable[[], int] = lambda: 256 * 1024) -> None:
        self.store, self.hub_id, self.send, self.max_bytes = store, hub_id, send, max_bytes
        self.through: dict[str, int] = {}
        self.suspects: dict[str, set[int]] = {}
        self.asked = 0

    def check(self, seen: set[str] | None = None) -> None:
        """Check every station that reported a status, plus `seen` (stations this process ingested)."""
        for station in sorted(set(self.store.station_ids()) | (seen or set())):
            self._check_station(station)

    def _check_station(self, station: str) -> None:
        low = self.through.get(station)
        seqs = self.store.seqs_after(station, low if low is not None else -(2**62))
        if not seqs:
            return
        start = seqs[0] - 1 if low is None else low
        missing = _missing(start, seqs, MAX_ASK * 10)
        self.through[station] = (missing[0] - 1) if missing else seqs[-1]
        room = max(1, min(MAX_ASK, (self.max_bytes() - 200) // 21))  # a seq is at most 20 digits and a comma
        persistent = [s for s in missing if s in self.suspects.get(station, set())][:room]
        self.suspects[station] = set(missing[: MAX_ASK * 10])
        if persistent:
            self.asked += len(persistent)
            log.info("hub.gap_resend", station=station, first=persistent[0], count=len(persistent))
            self.send(p.topic(station, "cmd"), p.CmdMsg(hub=self.hub_id, op="resend", seqs=persistent).model_dump_json().encode())


def _missing(start: int, seqs: list[int], cap: int) -> list[int]:
    """The lowest `cap` seqs above `start` and below the highest of `seqs` (sorted, distinct) not among them;
    never the whole gap, which a station's seq jump can make as wide as 2**63."""
    out: list[int] = []
    prev = start
    for seq in seqs:
        if seq > prev + 1:
            out.extend(range(prev + 1, min(seq, prev + 1 + cap - len(out))))
            if len(out) >= cap:
                break
        prev = max(prev, seq)
    return out
