"""Per-station seq gap detection: seqs missing below the highest committed one, twice in a row."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from central_sync import protocol as p
from central_sync.hub.store import HubStore

log = structlog.get_logger("central_sync.hub")
MAX_ASK = 1000
GIVE_UP_ASKS = 60  # a seq asked for this many times (5 minutes at the hub's 5 s period) is no longer asked for


class GapChecker:
    """Remembers each station's contiguous prefix (kept in the hub store: a restarted hub starts where it was,
    not at each station's oldest record, above which retention has deleted most seqs); asks for seqs that stay
    missing."""

    def __init__(self, store: HubStore, hub_id: str, send: Callable[[str, bytes], None],
                 max_bytes: Callable[[], int] = lambda: 256 * 1024) -> None:
        self.store, self.hub_id, self.send, self.max_bytes = store, hub_id, send, max_bytes
        self.through: dict[str, int] = {}
        self.suspects: dict[str, set[int]] = {}
        self.asks: dict[str, dict[int, int]] = {}  # station -> seq -> times asked for
        self.lost: dict[str, set[int]] = {}  # station -> seqs no longer asked for, above its contiguous prefix
        self.asked = self.given_up = 0
        self._loaded = False

    def check(self, seen: set[str] | None = None) -> None:
        """Check every station that reported a status, plus `seen` (stations this process ingested)."""
        if not self._loaded:
            for station, through in self.store.gap_prefixes().items():
                self.through[station] = max(through, self.through.get(station, through))
            self._loaded = True
        for station in sorted(set(self.store.station_ids()) | (seen or set())):
            self._check_station(station)

    def _check_station(self, station: str) -> None:
        low = self.through.get(station)
        seqs = self.store.seqs_after(station, low if low is not None else -(2**62))
        if not seqs:
            return
        start = seqs[0] - 1 if low is None else low
        lost = self.lost.setdefault(station, set())
        missing = [s for s in _missing(start, seqs, MAX_ASK * 10) if s not in lost]
        self.through[station] = (missing[0] - 1) if missing else seqs[-1]
        if self.through[station] != low:
            self.store.save_gap_prefix(station, self.through[station])
        lost.difference_update([s for s in lost if s <= self.through[station]])  # behind the prefix now
        room = max(1, min(MAX_ASK, (self.max_bytes() - 200) // 21))  # a seq is at most 20 digits and a comma
        persistent = [s for s in missing if s in self.suspects.get(station, set())][:room]
        self.suspects[station] = set(missing[: MAX_ASK * 10])
        asks = self.asks.setdefault(station, {})
        for seq in list(asks):
            if seq not in self.suspects[station]:
                del asks[seq]  # it came, or it is counted lost
        for seq in persistent:
            asks[seq] = asks.get(seq, 0) + 1
            if asks[seq] >= GIVE_UP_ASKS:  # a record the station parked (the hub refused it) never comes
                lost.add(seq)
                self.given_up += 1
                log.warning("hub.gap_given_up", station=station, seq=seq, asks=asks[seq],
                            detail=f"station {station} did not send seq {seq} after {asks[seq]} requests; it is no "
                                   f"longer asked for (a record the station parked; taken if it still comes)")
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
