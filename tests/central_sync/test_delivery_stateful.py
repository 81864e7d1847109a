"""The sans-IO delivery core against an adversarial broker and hub (Hypothesis stateful tests).

The model owns the outbox (as SQLite would), a broker that drops, duplicates, reorders and delays
messages, answers PUBACKs in any order and with error codes, and ends sessions; and an idempotent
hub that commits or rejects and whose acks are dropped, duplicated, reordered and delayed.
Invariants checked after every step and action: the window is never exceeded, images never take
more than half of it, no record is sent while an alert from the session's start is unresolved,
nothing is retired that the hub has not acknowledged as committed. At the end the network turns
calm and every row must reach the hub exactly once, or be parked for a reason the model caused.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from central_sync import delivery_events as ev
from central_sync.delivery import Delivery
from central_sync.outbox import Lane
from central_sync.protocol import AckItem
from central_sync.station_db import Row

STATION = "gate-1"
KINDS = {Lane.ALERT: ("alert",), Lane.RECORD: ("inspection", "review", "tip", "route"), Lane.IMAGE: ("blob",)}
CODES = st.sampled_from([0, 0, 0, 0, 0x80, 0x97, 0x87, 0x95])
STEPS = 60
EXAMPLES = 300


@dataclass
class Msg:
    """A publish as the broker holds it."""

    rows: tuple[int, ...]
    chunk: int | None = None
    session: int = 0


@dataclass
class Hub:
    """Idempotent: a row is in `committed` once however often it arrives."""

    committed: set[int] = field(default_factory=set)
    chunks: dict[int, set[int]] = field(default_factory=dict)
    inserts: dict[int, int] = field(default_factory=dict)  # row id -> times written (must stay 1)


class DeliveryMachine(RuleBasedStateMachine):
    @initialize(window=st.integers(1, 5), max_unacked=st.integers(1, 8), uploads=st.integers(1, 3),
                batch=st.integers(1, 4), seed=st.integers(0, 2**16))
    def start(self, window, max_unacked, uploads, batch, seed):
        self.limits = ev.Limits(window=window, max_unacked=max_unacked, max_uploads=uploads, batch_max_rows=batch,
                                max_payload=8192, chunk_bytes=1024, ack_timeout_s=5.0, progress_timeout_s=10.0,
                                poll_s=0.02, status_period_s=3.0, backoff_min_s=0.1, backoff_max_s=1.0)
        self.core = Delivery(STATION, self.limits, random.Random(seed))
        self.now = 100.0
        self.outbox: dict[int, Row] = {}
        self.chunk_counts: dict[int, int] = {}
        self.forged: set[int] = set()  # the hub rejects these
        self.parked: set[int] = set()
        self.may_park: set[int] = set()  # rows the broker refused as too large or blamed
        self.progress: dict[int, set[int]] = {}
        self.next_id = 1
        self.session = 0
        self.outstanding: dict[int, Msg] = {}  # ref -> publish awaiting PUBACK this session
        self.broker: list[Msg] = []  # accepted by the broker, not yet delivered to the hub
        self.to_station: list[AckItem] = []
        self.commit_acked: set[int] = set()  # committed acks the station has received
        self.hub = Hub()
        self.up()

    # ---- driving the core, as sender.py does ---------------------------------------------
    def apply(self, event) -> None:
        todo = [event]
        while todo:
            for action in self.core.handle(todo.pop(0)):
                answer = self.do(action)
                if answer is not None:
                    todo.append(answer)

    def do(self, action):
        match action:
            case ev.Publish(ref, _, _, rows):
                assert all(r in self.outbox for r in rows), f"published retired rows {rows}"
                self.sent(ref, Msg(rows, session=self.session))
                self.check_alerts_first(rows)
            case ev.PublishChunk(ref, row_id, index):
                self.sent(ref, Msg((row_id,), index, self.session))
            case ev.PublishStatus(ref):
                self.sent(ref, Msg((), session=self.session))
            case ev.Fetch(lane, after, limit):
                rows = [r for i, r in sorted(self.outbox.items()) if r.lane == lane and i > after and i not in self.parked]
                return ev.RowsFetched(lane, tuple(Row(**{k: getattr(r, k) for k in Row.__slots__}) for r in rows[:limit]))
            case ev.OpenBlob(row, _):
                return ev.BlobOpened(row.id, self.chunk_counts[row.id], frozenset(self.progress.get(row.id, ())))
            case ev.Retire(pairs):
                for row_id, record_id in pairs:
                    assert row_id in self.commit_acked, f"row {row_id} retired without the hub's committed ack"
                    assert row_id in self.hub.committed
                    if row_id in self.outbox and self.outbox[row_id].record_id == record_id:
                        del self.outbox[row_id]
            case ev.Park(row_id, _, _):
                self.parked.add(row_id)
            case ev.SaveProgress(row_id, _, stored):
                self.progress[row_id] = set(stored)
            case ev.Restart():
                self.down(None)
                self.up()
        return None

    def sent(self, ref: int, msg: Msg) -> None:
        self.outstanding[ref] = msg
        assert len(self.outstanding) <= self.limits.window, "window exceeded"
        chunks = sum(1 for m in self.outstanding.values() if m.chunk is not None)
        assert chunks <= max(1, self.limits.window // 2), "images took more than half the window"

    def check_alerts_first(self, rows) -> None:
        if any(self.outbox[r].lane == Lane.RECORD for r in rows):
            behind = [a for a in self.gate_alerts if a in self.outbox and a not in self.parked]
            assert not behind, f"records {rows} sent while alerts {behind} of the session's backlog are unresolved"

    def up(self) -> None:
        self.session += 1
        self.outstanding = {}
        alerts = [i for i, r in self.outbox.items() if r.lane == Lane.ALERT and i not in self.parked]
        self.gate_alerts = set(alerts)
        self.apply(ev.SessionUp(self.now, self.limits, max(alerts, default=0)))

    def down(self, code: int | None) -> None:
        """The session ended: PUBACKs of this session will never come."""
        if code is not None:
            first = next((m for m in self.outstanding.values() if m.rows), None)
            if code in (0x81, 0x82, 0x95) and first is not None and len(first.rows) == 1:
                self.may_park.add(first.rows[0])
            self.apply(ev.BrokerDisconnected(code))
        self.outstanding = {}

    # ---- the station produces ----------------------------------------------------------------
    @rule(lane=st.sampled_from(list(Lane)), n=st.integers(1, 4), kind=st.integers(0, 3), forged=st.booleans(),
          chunks=st.integers(1, 3))
    def produce(self, lane, n, kind, forged, chunks):
        for _ in range(n):
            i = self.next_id
            self.next_id += 1
            kinds = KINDS[lane]
            self.outbox[i] = Row(i, lane, kinds[kind % len(kinds)], f"rec-{i}", i, b'{"x":1}', 7, 0)
            if lane == Lane.IMAGE:
                self.chunk_counts[i] = chunks
            elif forged and lane == Lane.RECORD:
                self.forged.add(i)
        self.apply(ev.Wake())

    # ---- time ------------------------------------------------------------------------------
    @rule()
    def fill(self):
        self.apply(ev.Fill(self.now, 1.7e9 + self.now))

    @rule(dt=st.sampled_from([0.01, 0.25, 1.0, 4.0, 6.0, 11.0]))
    def tick(self, dt):
        self.now += dt
        self.apply(ev.Tick(self.now))

    # ---- the broker --------------------------------------------------------------------------
    @precondition(lambda self: self.outstanding)
    @rule(pick=st.integers(0, 50), code=CODES, data=st.data())
    def puback(self, pick, code, data):
        ref = sorted(self.outstanding)[pick % len(self.outstanding)]
        msg = self.outstanding.pop(ref)
        if code < 0x80 or data.draw(st.booleans(), label="accepted anyway"):
            self.broker.append(msg)  # a broker may accept, then drop or refuse in the same breath
        if code == 0x95 and (len(msg.rows) == 1 or msg.chunk is not None):
            self.may_park.update(msg.rows)
        self.apply(ev.PubAck(ref, code, self.now))

    @precondition(lambda self: self.outstanding)
    @rule(pick=st.integers(0, 50))
    def broker_forwards_before_puback(self, pick):
        ref = sorted(self.outstanding)[pick % len(self.outstanding)]
        self.broker.append(self.outstanding[ref])

    @precondition(lambda self: self.broker)
    @rule(pick=st.integers(0, 50), how=st.sampled_from(["deliver", "deliver", "drop", "duplicate"]))
    def broker_queue(self, pick, how):
        msg = self.broker[pick % len(self.broker)]
        if how != "duplicate":
            self.broker.remove(msg)
        if how != "drop":
            self.deliver(msg)

    @rule(code=st.sampled_from([0x80, 0x81, 0x82, 0x8B, 0x95, 0x97]))
    def disconnect(self, code):
        self.down(code)
        self.up()

    # ---- the hub -----------------------------------------------------------------------------
    def deliver(self, msg: Msg) -> None:
        if msg.chunk is not None:
            self.deliver_chunk(msg.rows[0], msg.chunk)
            return
        for row_id in msg.rows:
            row = self.outbox.get(row_id)
            if row is None:
                continue  # retired meanwhile: the hub would say committed again; dropping it is harsher
            if row_id in self.forged:
                self.to_station.append(AckItem(msg=row_id, record_id=row.record_id, status="rejected", reason="forged"))
                continue
            self.commit(row)

    def deliver_chunk(self, row_id: int, index: int) -> None:
        row = self.outbox.get(row_id)
        if row is None:
            return
        held = self.hub.chunks.setdefault(row_id, set())
        held.add(index)
        self.to_station.append(AckItem(msg=row_id, record_id=row.record_id, status="chunk", index=index))
        if len(held) == self.chunk_counts[row_id]:
            self.commit(row)

    def commit(self, row: Row) -> None:
        if row.id not in self.hub.committed:
            self.hub.committed.add(row.id)
            self.hub.inserts[row.id] = self.hub.inserts.get(row.id, 0) + 1
        self.to_station.append(AckItem(msg=row.id, record_id=row.record_id, status="committed"))

    @precondition(lambda self: self.to_station)
    @rule(picks=st.lists(st.integers(0, 50), min_size=1, max_size=4), how=st.sampled_from(["send", "send", "drop", "duplicate"]))
    def hub_acks(self, picks, how):
        items = []
        for pick in picks:
            if self.to_station:
                item = self.to_station[pick % len(self.to_station)]
                if how != "duplicate":
                    self.to_station.remove(item)
                items.append(item)
        if how == "drop" or not items:
            return
        self.commit_acked.update(i.msg for i in items if i.status == "committed")
        self.apply(ev.HubAck(tuple(items)))

    @rule(pick=st.lists(st.integers(1, 40), max_size=5))
    def hub_asks_for_resend(self, pick):
        self.apply(ev.ResendRequest(tuple(pick)))

    # ---- invariants ---------------------------------------------------------------------------
    @invariant()
    def window_holds(self):
        if hasattr(self, "core"):
            assert self.core.figures()["inflight"] <= self.limits.window

    @invariant()
    def uploads_capped(self):
        if hasattr(self, "core"):
            assert len(self.core.s.uploads) <= self.limits.max_uploads

    @invariant()
    def nothing_forged_committed(self):
        if hasattr(self, "hub"):
            assert not (self.hub.committed & self.forged)
            assert all(n == 1 for n in self.hub.inserts.values())

    def teardown(self):
        """The network turns calm: everything not parked must reach the hub and leave the outbox."""
        if not hasattr(self, "core"):
            return
        for _ in range(400):  # the same session: lost messages must be re-sent without a reconnect
            self.fill()
            for ref in sorted(self.outstanding):
                msg = self.outstanding.pop(ref)
                self.deliver(msg)
                self.apply(ev.PubAck(ref, 0, self.now))
            self.broker = []
            while self.to_station:
                items, self.to_station = tuple(self.to_station), []
                self.commit_acked.update(i.msg for i in items if i.status == "committed")
                self.apply(ev.HubAck(items))
            if not [i for i in self.outbox if i not in self.parked]:
                break
            self.tick(1.0)
        left = sorted(i for i in self.outbox if i not in self.parked)
        assert not left, f"rows {left} never reached the hub"
        unexplained = self.parked - self.forged - self.may_park
        assert not unexplained, f"rows {sorted(unexplained)} parked for no reason the model gave"
        assert self.forged <= self.parked
        produced = set(range(1, self.next_id))
        assert produced - self.forged - self.parked <= self.hub.committed
        assert all(n == 1 for n in self.hub.inserts.values())


DeliveryMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                            suppress_health_check=[HealthCheck.too_slow])
test_delivery_against_adversarial_broker_and_hub = DeliveryMachine.TestCase
