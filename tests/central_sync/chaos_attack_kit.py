"""Chaos and attack harness (issue 22, "Also wanted"), shared by tests/central_sync/test_chaos_attack.py
(short, bounded by counts) and bench/bench_chaos.py (minutes).

A real Mosquitto with the shipped dynamic-security plugin and accounts, an `edge-hub run` process, two
honest stations' publishers (own processes) with backlogs of records (suspect ones among them), an
adversarial station account (`gate-9`) running issue 22's attacks 1, 2, 6, 8 (and 7 when asked) in rounds,
and a killer that SIGKILLs the broker, the hub and a station publisher in turn and starts them again.
`ChaosAttackRun.report()` says what a user would notice: every honest record at the hub exactly once with
its original body, nothing the adversary sent stored, and the adversary's outcome per attack.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from central_sync import protocol as p
from central_sync.broker_accounts import build
from central_sync.devtools import Mosquitto, fill, make_record, open_station_db, outbox_rows
from central_sync.hub.store import open_store
from central_sync.mqtt import login
from central_sync.schema import InspectionRecord, Review, RouteTaken, Verdict
from cs_chaos_kit import PublisherProc, sync_cfg
from polling import wait_until

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
HONEST = ("gate-1", "gate-2")
ADVERSARY = "gate-9"
ATTACKS = ("1 rewrite another station's record", "2 join the hub's $share subscription",
           "6 unstorable message in a batch", "7 take another client's id", "8 oversized upload or record")
VERDICTS = ("refused_by_broker", "rejected_by_hub", "no_answer", "landed")


@dataclass
class Plan:
    records: int = 300          # backlog per honest station
    step: int = 100             # records committed at the hub between two kills (count-bounded runs)
    kills: int = 6              # broker, hub, station, broker, ... (count-bounded runs)
    minutes: float = 0.0        # > 0: the bench; kill every `kill_every_s` and keep producing for this long
    kill_every_s: float = 8.0
    produce_every_s: float = 0.5
    min_rounds: int = 2         # adversary rounds answered by a running hub after the chaos
    item7: bool = False         # the client-id takeover (issue 22 item 7)
    drain_timeout_s: float = 240.0


class HubProcess(PublisherProc):
    """`edge-hub run` with the hub's broker account, started and SIGKILLed as the publisher's process is."""

    def __init__(self, db: str, port: int, pw: Path, log: Path) -> None:
        self.args = [sys.executable, "-m", "central_sync.hub.cli", "run", "--db", db, "--broker-port", str(port),
                     "--http-port", "0", "--hub-id", "hub-chaos", "--gap-period", "1", "--username", "hub",
                     "--password-file", str(pw)]
        self.log, self.proc = log, None


class Adversary(threading.Thread):
    """Station gate-9's own account, attacking in rounds until stopped; each round on a fresh connection."""

    def __init__(self, port: int, password: str, hub_db: str, item7: bool) -> None:
        super().__init__(daemon=True, name="adversary")
        self.port, self.password, self.hub_db, self.item7 = port, password, hub_db, item7
        self.outcomes: dict[str, Counter] = {a: Counter() for a in ATTACKS}
        self.rounds = self.answered_rounds = 0
        self.stop = threading.Event()
        self.msg = 0

    def run(self) -> None:
        store = open_store(self.hub_db)
        try:
            while not self.stop.is_set():
                bodies = store.query("SELECT body FROM records WHERE station IN (?, ?) AND verdict = 'suspect'"
                                     " ORDER BY seq LIMIT 2", HONEST)
                self.one_round([InspectionRecord.model_validate_json(b) for (b,) in bodies])
                self.stop.wait(0.3)
        finally:
            store.close()

    def client(self, client_id: str, link: str = "sync") -> tuple[mqtt.Client, dict]:
        seen: dict = {"connack": None, "subacks": [], "pubacks": {}, "acks": {}, "got": 0, "kicked": False}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(login(ADVERSARY, link), self.password)
        c.on_connect = lambda c_, u, f, rc, pr: seen.__setitem__("connack", rc.value)
        c.on_subscribe = lambda c_, u, mid, rcs, pr: seen["subacks"].extend(r.value for r in rcs)
        c.on_publish = lambda c_, u, mid, rc, pr: seen["pubacks"].__setitem__(mid, rc.value)
        c.on_disconnect = lambda c_, u, f, rc, pr: seen.__setitem__("kicked", True)
        c.on_message = lambda c_, u, m: self._on_message(seen, m)
        c.connect("127.0.0.1", self.port, 30)
        return c, seen

    @staticmethod
    def _on_message(seen: dict, m: mqtt.MQTTMessage) -> None:
        if m.topic == p.topic(ADVERSARY, "ack"):
            for a in p.AckMsg.model_validate_json(m.payload).acks:
                seen["acks"][a.msg] = a.status
        else:
            seen["got"] += 1

    @staticmethod
    def spin(c: mqtt.Client, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            c.loop(0.02)
            if cond():
                return True
        return False

    def one_round(self, victims: list[InspectionRecord]) -> None:
        try:
            c, seen = self.client(f"adv-{self.rounds}")
        except OSError:  # the broker is down (killed): nothing to try this round
            return
        if not self.spin(c, lambda: seen["connack"] is not None, 3.0) or seen["connack"] != 0:
            c.socket() and c.disconnect()
            return
        self.rounds += 1
        c.subscribe([(p.topic(ADVERSARY, "ack"), 1), ("$share/hub/cpe/v1/+/inspection", 1),
                     ("$share/hub/cpe/v1/+/alert", 1)])
        sent = self.send_attacks(c, victims)
        self.spin(c, lambda: len(seen["subacks"]) == 3 and len(seen["pubacks"]) == len(sent), 5.0)
        answered = self.spin(c, lambda: all(m in seen["acks"] or seen["pubacks"].get(pub, 0) >= 0x80
                                            for m, (_, pub, want) in sent.items() if want), 5.0)
        self.answered_rounds += answered
        shared = seen["subacks"][1:]
        self.outcomes[ATTACKS[1]]["refused_by_broker" if shared and all(s >= 0x80 for s in shared)
                                  else "landed" if shared else "no_answer"] += 1
        for mid, (attack, pub_mid, _) in sent.items():
            self.outcomes[attack][self.verdict(seen, mid, pub_mid)] += 1
        c.disconnect()
        if self.item7:
            self.take_client_id()

    @staticmethod
    def verdict(seen: dict, mid: int, pub_mid: int) -> str:
        if seen["pubacks"].get(pub_mid, 0) >= 0x80:
            return "refused_by_broker"
        status = seen["acks"].get(mid)
        return {"rejected": "rejected_by_hub", None: "no_answer"}.get(status, "landed")

    def publish(self, c: mqtt.Client, sent: dict, attack: str, kind: str, record_id: str, seq: int, body: bytes,
                station: str = ADVERSARY, want_ack: bool = True) -> None:
        self.msg += 1
        env = p.encode_envelope(station, kind, self.msg, seq, record_id, body, time.time())
        sent[self.msg] = (attack, c.publish(p.topic(station, kind), env, qos=1).mid, want_ack)

    def send_attacks(self, c: mqtt.Client, victims: list[InspectionRecord]) -> dict:
        sent: dict = {}
        at = datetime(2026, 1, 3, tzinfo=UTC)
        review = Review(officer="FAKE-9", decided_at=at, outcome="cleared")
        for v in victims:  # item 1: a forged clear verdict, review and route under the other station's id
            forged = v.model_copy(update={"station": ADVERSARY, "verdict": Verdict.CLEAR, "reason": "clear"})
            self.publish(c, sent, ATTACKS[0], "inspection", v.id, v.seq, forged.to_json().encode())
            self.publish(c, sent, ATTACKS[0], "review", v.id, v.seq,
                         forged.model_copy(update={"review": review}).to_json().encode())
            self.publish(c, sent, ATTACKS[0], "review", v.id, v.seq, forged.model_copy(
                update={"route": RouteTaken(to="pass", reason="clear", at=at)}).to_json().encode())
            self.publish(c, sent, ATTACKS[0], "review", v.id, v.seq, forged.model_copy(
                update={"station": v.station, "review": review}).to_json().encode(), station=v.station)
        n = self.rounds * 10
        nul, huge, big = (make_record(ADVERSARY, n + i) for i in (1, 2, 3))
        self.publish(c, sent, ATTACKS[2], "inspection", nul.id, nul.seq, _changed(nul, lane="L\x001"))
        self.publish(c, sent, ATTACKS[2], "inspection", huge.id, huge.seq, _changed(huge, seq=2**63))
        self.msg += 1
        deep = p.encode_batch(ADVERSARY, [b'{"kind":"inspection","x":' + b"[" * 5000 + b"]" * 5000 + b"}"])
        sent[self.msg] = (ATTACKS[2], c.publish(p.topic(ADVERSARY, "batch"), deep, qos=1).mid, False)
        self.publish(c, sent, ATTACKS[4], "inspection", big.id, big.seq, _changed(big, reason="r" * 300_000))
        self.msg += 1
        header = p.BlobChunkHeader(station=ADVERSARY, msg=self.msg, seq=n + 4, record_id=f"adv-{n}", sha256="ab" * 32,
                                   index=5, count=10**9, size=10**9, chunk_sha256=hashlib.sha256(b"x" * 10).hexdigest())
        sent[self.msg] = (ATTACKS[4], c.publish(p.blob_topic(ADVERSARY, "ab" * 32, 5),
                                                p.encode_chunk(header, b"x" * 10), qos=1).mid, True)
        return sent

    def take_client_id(self) -> None:
        """Item 7: two of gate-9's connections present gate-1's publisher's client id. A broker that honoured
        a presented id would have the second knock the first off, as it would knock gate-1 off; one that binds
        the id to the account gives them their own ids and both stay."""
        victim = login(HONEST[0], "sync")
        try:
            first, first_seen = self.client(victim, "sync")
            if not self.spin(first, lambda: first_seen["connack"] is not None, 3.0):
                return
            second, second_seen = self.client(victim, "cmd")
        except OSError:  # the broker is down (killed)
            return
        self.spin(second, lambda: second_seen["connack"] is not None, 3.0)
        self.spin(first, lambda: first_seen["kicked"] is not False, 1.0)
        self.spin(second, lambda: second_seen["kicked"] is not False, 0.3)
        if first_seen["kicked"] is False:
            verdict = "refused_by_broker"  # each connection kept its own id
        elif second_seen["kicked"] is False and second_seen["connack"] == 0:
            verdict = "landed"  # the second connection took the first's id and knocked it off
        else:
            verdict = "no_answer"  # the broker went away (killed) in the middle
        self.outcomes[ATTACKS[3]][verdict] += 1
        for c in (first, second):
            c.disconnect()


def _changed(rec: InspectionRecord, **changes: object) -> bytes:
    body = json.loads(rec.to_json())
    body.update(changes)
    return json.dumps(body).encode()


@dataclass
class Report:
    honest: int = 0
    lost: int = 0
    duplicated: int = 0
    rewritten: int = 0
    honest_rejected: int = 0
    adversary_rows: int = 0
    kills: Counter = field(default_factory=Counter)
    attacks: dict = field(default_factory=dict)
    rounds: int = 0

    @property
    def unexpected(self) -> int:
        landed = sum(c.get("landed", 0) for c in self.attacks.values())
        return self.rewritten + self.honest_rejected + self.adversary_rows + landed

    def as_dict(self) -> dict:
        return {"honest_records": self.honest, "lost": self.lost, "duplicated": self.duplicated,
                "unexpected": self.unexpected, "rewritten": self.rewritten, "honest_rejected": self.honest_rejected,
                "adversary_rows": self.adversary_rows, "kills": dict(self.kills), "adversary_rounds": self.rounds,
                "attacks": {a: dict(c) for a, c in self.attacks.items()}}

    def text(self) -> str:
        lines = [f"honest records {self.honest}: lost {self.lost}, duplicated {self.duplicated}, "
                 f"unexpected {self.unexpected} (rewritten {self.rewritten}, honest rejected {self.honest_rejected}, "
                 f"adversary rows stored {self.adversary_rows})",
                 f"kills: {dict(self.kills)}; adversary rounds {self.rounds}"]
        lines += [f"  attack {a:40s} " + ", ".join(f"{k} {c[k]}" for k in VERDICTS if c.get(k))
                  for a, c in self.attacks.items() if c]
        return "\n".join(lines)


class ChaosAttackRun:
    """Start everything in `workdir` (hub database `hub_db`: a SQLite path or a PostgreSQL URL), run the plan."""

    def __init__(self, workdir: Path, hub_db: str, plan: Plan) -> None:
        self.dir, self.hub_db, self.plan = workdir, hub_db, plan
        self.pw = {"hub": "hub-pw", **{s: f"pw-{s}" for s in (*HONEST, ADVERSARY)}}
        for user, pw in self.pw.items():
            (workdir / f"{user}.pw").write_text(pw + "\n")
        accounts = workdir / "dynamic-security.json"
        stations = {u: pw for u, pw in self.pw.items() if u != "hub"}
        accounts.write_text(json.dumps(build({"hub": self.pw["hub"]}, stations)))
        plugin = next(line for line in CONF.read_text().splitlines() if line.startswith("plugin "))
        self.broker = Mosquitto(workdir / "broker", f"per_listener_settings false\nallow_anonymous false\n{plugin}\n"
                                f"plugin_opt_config_file {accounts}", anonymous=False)
        with self.broker.conf.open("a") as conf:  # as shipped: a listener option, after the listener line
            conf.write("use_username_as_clientid true\n")
        self.records: dict[str, list[InspectionRecord]] = {s: [] for s in HONEST}
        self.dbs = {s: workdir / f"{s}.db" for s in HONEST}
        self.kills: Counter = Counter()
        self.store = open_store(hub_db)
        self.store.migrate()

    def __enter__(self) -> "ChaosAttackRun":
        for s in HONEST:
            self.add(s, self.plan.records)
        self.broker.start()
        self.hub = HubProcess(self.hub_db, self.broker.port, self.dir / "hub.pw", self.dir / "hub.log")
        self.hub.start()
        self.pubs = {s: PublisherProc(sync_cfg(self.broker.port, username=s, password_file=self.dir / f"{s}.pw"), s,
                                      self.dbs[s], self.dir, self.dir / f"{s}.log") for s in HONEST}
        for pub in self.pubs.values():
            pub.start()
        self.adversary = Adversary(self.broker.port, self.pw[ADVERSARY], self.hub_db, self.plan.item7)
        self.adversary.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.adversary.stop.set()
        self.adversary.join(30)
        for pub in self.pubs.values():
            pub.kill9()
        self.hub.kill9()
        self.broker.kill()
        self.store.close()

    def add(self, station: str, count: int) -> None:
        with closing(open_station_db(self.dbs[station])) as conn:
            self.records[station] += fill(conn, station, len(self.records[station]) + 1, count, alert_every=7)

    def committed(self) -> int:
        return self.store.query("SELECT count(*) FROM records WHERE station IN (?, ?)", HONEST)[0][0]

    def kill(self, n: int) -> None:
        """Kill number n: broker, hub, a station publisher in turn; SIGKILL, then start again."""
        victim = ("broker", "hub", "station")[n % 3]
        if victim == "broker":
            self.broker.kill()
            self.broker.start()
        elif victim == "hub":
            self.hub.kill9()
            self.hub.start()
        else:
            pub = self.pubs[HONEST[(n // 3) % 2]]
            pub.kill9()
            pub.start()
        self.kills[victim] += 1

    def chaos(self) -> None:
        """Count-bounded (the test) or timed (the bench) kills while the stations deliver and the adversary attacks."""
        if self.plan.minutes <= 0:
            for n in range(self.plan.kills):
                goal = min((n + 1) * self.plan.step, self.plan.records * len(HONEST))
                wait_until(self.committed, f"{goal} honest records at the hub", check=lambda c: c >= goal,
                           timeout=self.plan.drain_timeout_s, interval=0.05)
                self.kill(n)
            return
        end, n, next_kill = time.monotonic() + self.plan.minutes * 60, 0, time.monotonic() + self.plan.kill_every_s
        while time.monotonic() < end:
            time.sleep(self.plan.produce_every_s)
            for s in HONEST:
                self.add(s, 5)
            if time.monotonic() >= next_kill:
                self.kill(n)
                n, next_kill = n + 1, time.monotonic() + self.plan.kill_every_s

    def settle(self) -> None:
        """Wait until every honest outbox is empty and the adversary had `min_rounds` more answered rounds."""
        for s in HONEST:
            wait_until(lambda: outbox_rows(self.dbs[s]), f"{s}'s outbox drained", check=lambda r: r == 0,
                       timeout=self.plan.drain_timeout_s, interval=0.2)
        goal = self.adversary.answered_rounds + self.plan.min_rounds
        wait_until(self.answered_rounds, f"{goal} adversary rounds answered by the hub",
                   check=lambda r: r >= goal, timeout=self.plan.drain_timeout_s, interval=0.1)
        self.adversary.stop.set()
        self.adversary.join(30)

    def answered_rounds(self) -> int:
        if not self.adversary.is_alive():
            raise RuntimeError(f"the adversary thread ended after {self.adversary.rounds} rounds; see the test's log")
        return self.adversary.answered_rounds

    def report(self) -> Report:
        rows = self.store.query("SELECT id, station, seq, body FROM records")
        by_id = {r[0]: r for r in rows}
        honest = [r for recs in self.records.values() for r in recs]
        rep = Report(honest=len(honest), kills=self.kills, attacks=self.adversary.outcomes,
                     rounds=self.adversary.rounds)
        rep.lost = sum(r.id not in by_id for r in honest)
        seqs = Counter((r[1], r[2]) for r in rows if r[1] in HONEST)
        rep.duplicated = sum(n - 1 for n in seqs.values())
        rep.rewritten = sum(r.id in by_id and by_id[r.id][1:] != (r.station, r.seq, r.to_json()) for r in honest)
        rep.adversary_rows = (self.store.query("SELECT count(*) FROM records WHERE station = ?", (ADVERSARY,))[0][0]
                              + self.store.query("SELECT count(*) FROM reviews")[0][0]
                              + self.store.query("SELECT count(*) FROM blob_uploads")[0][0]
                              + self.store.query("SELECT count(*) FROM blob_chunks")[0][0])
        for db in self.dbs.values():
            with closing(sqlite3.connect(db)) as c:
                parked = c.execute("SELECT count(*) FROM outbox WHERE last_error LIKE 'parked:%'").fetchone()
                rep.honest_rejected += parked[0]
        return rep
