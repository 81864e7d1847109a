"""The shipped broker accounts (dynamic-security plugin, as deploy/mosquitto/mosquitto.conf loads it,
built by central_sync.broker_accounts) on a real Mosquitto: each station only under its own id."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central_sync.broker_accounts import build
from central_sync.commands import CommandLink, cmd_topic, result_topic
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import Mosquitto, fill, open_station_db, outbox_rows
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.mqtt import HUB_LINKS, STATION_LINKS
from central_sync.publisher import Publisher
from polling import until

CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
USERS = {"hub": "hub-secret", "gate-1": "pw-1", "gate-2": "pw-2"}


def shipped(option: str) -> str:
    """The shipped mosquitto.conf's line for `option` (the plugin it loads)."""
    return next(line for line in CONF.read_text().splitlines() if line.startswith(option + " "))


def test_every_shipped_password_listener_takes_the_user_name_as_client_id():
    """The certificate listener is the exception: every link of a station has the one CN (docs/pki.md)."""
    blocks = [b.splitlines() for b in ("\n" + "\n".join(line for line in CONF.read_text().splitlines()
                                                          if line and not line.startswith("#"))).split("\nlistener ")[1:]]
    password = [b for b in blocks if "use_identity_as_username true" not in b]
    assert len(password) == 2 and all(b[1] == "use_username_as_clientid true" for b in password)


@pytest.fixture
def secure_broker(tmp_path):
    accounts = tmp_path / "dynamic-security.json"
    accounts.write_text(json.dumps(build({"hub": USERS["hub"]}, {u: pw for u, pw in USERS.items() if u != "hub"})))
    for user, pw in USERS.items():
        (tmp_path / f"{user}.pw").write_text(pw + "\n")
    extra = f"per_listener_settings false\nallow_anonymous false\n{shipped('plugin')}\nplugin_opt_config_file {accounts}"
    broker = Mosquitto(tmp_path / "b", extra, anonymous=False)
    with broker.conf.open("a") as conf:  # a listener option: after the test's listener line
        conf.write(shipped("use_username_as_clientid") + "\n")
    with broker as b:
        yield b, tmp_path


class Client:
    """A bare paho client driven synchronously, recording what the broker answers."""

    def __init__(self, port: int, user: str, pw: str, client_id: str | None = None) -> None:
        self.user = user
        self.got: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        self.subacks: list[int] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or user, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, pw)
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc.value)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.extend(r.value for r in rcs)
        self.connack = None
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc.value)
        self.c.connect("127.0.0.1", port, 30)
        self.spin(lambda: self.connack is not None)

    def spin(self, cond, timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.c.loop(0.02)
            if cond():
                return True
        return False

    def close(self) -> None:
        self.c.disconnect()


def test_station_confined_to_its_own_topics(secure_broker):
    broker, _ = secure_broker
    hub = Client(broker.port, "hub.priority", USERS["hub"])
    hub.c.subscribe([("$share/hub/cpe/v1/+/inspection", 1), ("cpe/v1/+/status", 1)])
    assert hub.spin(lambda: len(hub.subacks) == 2) and all(code < 0x80 for code in hub.subacks)
    g1 = Client(broker.port, "gate-1.sync", USERS["gate-1"])
    g1.c.subscribe([("cpe/v1/gate-1/ack", 1), ("cpe/v1/gate-2/ack", 1), ("cpe/v1/+/inspection", 1)])
    assert g1.spin(lambda: len(g1.subacks) == 3) and g1.subacks == [1, 0x87, 0x87]  # only its own
    g2 = Client(broker.port, "gate-2.sync", USERS["gate-2"])
    g2.c.publish("cpe/v1/gate-2/inspection", b"gate-2 own", qos=1)
    assert g2.spin(lambda: len(g2.pubacks) == 1)
    own = g1.c.publish("cpe/v1/gate-1/inspection", b"mine", qos=1).mid
    forged = g1.c.publish("cpe/v1/gate-2/inspection", b"forged", qos=1).mid
    assert g1.spin(lambda: len(g1.pubacks) == 2)
    assert g1.pubacks[own] == 0 and g1.pubacks[forged] == 0x87
    g1.c.subscribe([("cpe/v1/gate-1/cmd/signed", 1), ("cpe/v1/gate-2/cmd/signed", 1)])
    hub.c.subscribe([("cpe/v1/+/cmd/result", 1)])
    assert g1.spin(lambda: len(g1.subacks) == 5) and hub.spin(lambda: len(hub.subacks) == 3)
    g1.c.publish("cpe/v1/gate-1/cmd/result", b"result", qos=1)
    g1.c.publish("cpe/v1/gate-2/cmd/result", b"forged result", qos=1)
    for name in ("cpe/v1/gate-2/ack", "cpe/v1/gate-1/ack", "cpe/v1/gate-2/cmd/signed", "cpe/v1/gate-1/cmd/signed"):
        hub.c.publish(name, f"for {name}".encode(), qos=1)
    assert hub.spin(lambda: len(hub.got) >= 3) and g1.spin(lambda: len(g1.got) >= 2)
    hub.spin(lambda: False, 0.3)
    g1.spin(lambda: False, 0.3)
    assert sorted(hub.got) == [("cpe/v1/gate-1/cmd/result", b"result"), ("cpe/v1/gate-1/inspection", b"mine"),
                               ("cpe/v1/gate-2/inspection", b"gate-2 own")]
    assert sorted(g1.got) == [("cpe/v1/gate-1/ack", b"for cpe/v1/gate-1/ack"),
                              ("cpe/v1/gate-1/cmd/signed", b"for cpe/v1/gate-1/cmd/signed")]
    hub.close(), g1.close(), g2.close()


async def test_publisher_and_hub_with_credentials(secure_broker):
    broker, tmp = secure_broker
    db = tmp / "st.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 20, alert_every=5)
    store = open_store(str(tmp / "hub.db"))
    hub_cfg = BrokerConfig(port=broker.port, username="hub", password_file=tmp / "hub.pw")
    good = SyncConfig(port=broker.port, username="gate-1", password_file=tmp / "gate-1.pw")
    ignore = lambda topic, payload: None  # noqa: E731
    async with Hub(hub_cfg, store, "hub-acl"), Publisher(good, "gate-1", db, tmp) as pub, \
            CommandLink(hub_cfg, "cr", [result_topic("+")], ignore, link="cr") as room, \
            CommandLink(good, "cmd", [cmd_topic("gate-1")], ignore, link="cmd") as station:
        await until(lambda: outbox_rows(db) == 0, "the outbox drained", in_thread=True)
        assert store.query("SELECT count(*) FROM records") == [(20,)]
        await room.ready()
        await station.ready()
        from edge.diag.phases.hub import _round_trips  # the station's third connection, diagnostics

        assert len(await asyncio.to_thread(_round_trips, good, "gate-1")) == 5
        assert room.connected.is_set() and station.connected.is_set() and pub.stats()["connected"]
    wrong = SyncConfig(port=broker.port, username="gate-1", password_file=tmp / "gate-2.pw", reconnect_min_s=0.2)
    async with Publisher(wrong, "gate-1", db, tmp) as pub:
        await until(lambda: pub.stats()["last_error"], "the broker's refusal seen", interval=0.1)
        assert "refused" in pub.stats()["last_error"] and not pub.stats()["connected"]
    conn.close()


async def test_acl_denial_is_an_error_and_nothing_is_retired(secure_broker):
    broker, tmp = secure_broker
    db = tmp / "st2.db"
    conn = open_station_db(db)
    fill(conn, "gate-2", 1, 5)
    conn.close()
    store = open_store(str(tmp / "hub2.db"))
    hub_cfg = BrokerConfig(port=broker.port, username="hub", password_file=tmp / "hub.pw")
    wrong_id = SyncConfig(port=broker.port, username="gate-1", password_file=tmp / "gate-1.pw", reconnect_min_s=0.2)
    async with Hub(hub_cfg, store, "hub-acl2"), Publisher(wrong_id, "gate-2", db, tmp) as pub:
        await until(lambda: pub.stats()["counters"].get("puback_0x87", 0) >= 5,
                    "five publishes refused as not authorised", interval=0.1)
        stats = pub.stats()
    assert stats["counters"]["puback_0x87"] >= 5 and "0x87 not authorised" in stats["last_error"]
    assert outbox_rows(db) == 5 and store.query("SELECT count(*) FROM records") == [(0,)]


async def test_shipped_acl_lets_a_station_send_its_tip_outcomes(secure_broker):
    from datetime import UTC, datetime

    from central_sync.outbox import Lane, enqueue
    from central_sync.protocol import TipOutcome

    broker, tmp = secure_broker
    db = tmp / "st3.db"
    conn = open_station_db(db)
    at = datetime(2026, 11, 25, 9, tzinfo=UTC)
    body = TipOutcome(station="gate-1", officer="B-1", record_id="item-1", projection=1, threat="knife-0", label="knife",
                      outcome="hit", shown_at=at, responded_at=at, decision_ms=0.0).model_dump_json()
    conn.execute("BEGIN")
    enqueue(conn, Lane.RECORD, "tip", "item-1", 1, body)  # a single row travels on cpe/v1/gate-1/tip
    conn.execute("COMMIT")
    conn.close()
    store = open_store(str(tmp / "hub3.db"))
    hub_cfg = BrokerConfig(port=broker.port, username="hub", password_file=tmp / "hub.pw")
    station = SyncConfig(port=broker.port, username="gate-1", password_file=tmp / "gate-1.pw")
    async with Hub(hub_cfg, store, "hub-acl3"), Publisher(station, "gate-1", db, tmp) as pub:
        # past the ack timeout (20 s): a row sent before the hub's links subscribed is sent again after it
        await until(lambda: outbox_rows(db) == 0, "TIP outcome delivered", timeout=60, in_thread=True)
        assert pub.stats()["counters"].get("puback_0x87", 0) == 0
    assert store.query("SELECT officer, outcome FROM tip_outcomes") == [("B-1", "hit")]


def test_a_station_cannot_join_the_hubs_shared_subscription(secure_broker):
    """Issue 22 item 2: a station account in `$share/hub/...` used to take its share of every
    station's records (then dropped at delivery), starving the hub. It is now refused with 0x87."""
    broker, _ = secure_broker
    hub = Client(broker.port, "hub.priority", USERS["hub"])
    hub.c.subscribe([("$share/hub/cpe/v1/+/inspection", 1)])
    assert hub.spin(lambda: len(hub.subacks) == 1) and hub.subacks[0] < 0x80
    thief = Client(broker.port, "gate-1.sync", USERS["gate-1"])
    thief.c.subscribe([("$share/hub/cpe/v1/+/inspection", 1), ("$share/hub/cpe/v1/+/alert", 1),
                       ("$share/other/cpe/v1/gate-2/inspection", 1), ("cpe/v1/gate-2/inspection", 1)])
    assert thief.spin(lambda: len(thief.subacks) == 4)
    assert thief.subacks == [0x87] * 4
    g2 = Client(broker.port, "gate-2.sync", USERS["gate-2"])
    for n in range(20):
        g2.c.publish("cpe/v1/gate-2/inspection", f"record {n}".encode(), qos=1)
    assert g2.spin(lambda: len(g2.pubacks) == 20) and set(g2.pubacks.values()) == {0}
    both = lambda: (hub.c.loop(0.01), thief.c.loop(0.01), len(hub.got) == 20)[-1]  # noqa: E731
    assert hub.spin(both, timeout=10), f"the hub received {len(hub.got)} of 20 records"
    assert thief.got == []
    hub.close(), thief.close(), g2.close()


def test_an_account_cannot_knock_the_hub_or_a_station_off_with_their_client_ids(secure_broker):
    """Issue 22 item 7: a second connection with a client id in use closes the first, and Mosquitto let
    any account pick any id. The shipped conf makes the client id the account name (one per connection)."""
    broker, _ = secure_broker
    victims = [Client(broker.port, "hub.priority", USERS["hub"]), Client(broker.port, "gate-1.sync", USERS["gate-1"])]
    for victim in victims:
        victim.kicked = False
        victim.c.on_disconnect = lambda c, u, f, rc, p, v=victim: setattr(v, "kicked", True)
    assert [v.connack for v in victims] == [0, 0]
    for victim in victims:
        intruder = Client(broker.port, "gate-2.sync", USERS["gate-2"], client_id=victim.user)
        assert intruder.connack == 0
        # the broker handled the intruder's CONNECT before its CONNACK: a victim taken over gets no SUBACK
        victim.c.subscribe([("cpe/v1/gate-1/ack" if "gate" in victim.user else "cpe/v1/+/status", 1)])
        assert victim.spin(lambda v=victim: bool(v.subacks) or v.kicked)
        assert not victim.kicked and victim.subacks[0] < 0x80, f"{victim.user} was knocked off"
        intruder.close()
    for victim in victims:
        victim.close()


def test_each_connection_of_a_station_and_a_hub_logs_in_on_its_own_account(secure_broker):
    """The generator makes one account per connection from one entry: `gate-1` -> gate-1.sync, .cmd, .diag, .risk."""
    broker, _ = secure_broker
    names = [f"hub.{link}" for link in HUB_LINKS] + [f"gate-1.{link}" for link in STATION_LINKS]
    clients = [Client(broker.port, name, USERS[name.split(".")[0]]) for name in names]
    assert [c.connack for c in clients] == [0] * len(names)
    assert Client(broker.port, "gate-1", USERS["gate-1"]).connack >= 0x80  # the bare base is no account
    assert Client(broker.port, "gate-1.sync", USERS["gate-2"]).connack >= 0x80
    for c in clients:
        c.close()


def test_account_file_tool_names_what_is_wrong(tmp_path, capsys):
    from central_sync.broker_accounts import AccountsError, main

    with pytest.raises(AccountsError, match="'gate 1'"):
        build({}, {"gate 1": "pw"})
    assert main(["--station", f"gate-1={tmp_path / 'missing.pw'}"]) == 78
    assert "missing.pw of account 'gate-1'" in capsys.readouterr().err
    (tmp_path / "gate-1.pw").write_text("pw-1\n")
    assert main(["--station", f"gate-1={tmp_path / 'gate-1.pw'}"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert [c["username"] for c in written["clients"]] == ["gate-1.sync", "gate-1.cmd", "gate-1.diag", "gate-1.risk",
                                                              "gate-1.model"]
    assert "pw-1" not in json.dumps(written)


@pytest.mark.parametrize(("hubs", "stations", "certs", "clash"), [
    ({}, {"gate-1": "pw"}, {"cert_stations": ("gate-1",)}, ("gate-1", "gate-1")),
    ({}, {"gate-1": "pw"}, {"cert_stations": ("gate-1.sync",)}, ("gate-1.sync", "gate-1")),
    ({"hub": "pw"}, {}, {"cert_hubs": ("hub",)}, ("hub", "hub")),
    ({"hub": "pw"}, {}, {"cert_stations": ("hub.cr",)}, ("hub.cr", "hub"))])
def test_a_certificate_account_named_as_a_password_account_is_refused(hubs, stations, certs, clash):
    """--station gate-1=PW with --cert-station gate-1 (or gate-1.sync) was written: one station two ways in whose
    connections share client ids, or two plugin accounts of one name."""
    from central_sync.broker_accounts import AccountsError

    cert, name = clash
    links = ("priority", "bulk", "cr", "risk", "model") if hubs else ("sync", "cmd", "diag", "risk", "model")
    with pytest.raises(AccountsError) as refused:
        build(hubs, stations, **certs)
    assert str(refused.value) == (
        f"certificate account {cert!r} clashes with password account {name!r} (its connections log in as "
        f"{', '.join(f'{name}.{link}' for link in links)}): a client logs in by password or by certificate, each "
        "under a name of its own")


@pytest.mark.parametrize("leaf", ["risk", "model"])  # risk bundles, signed model packages
def test_risk_bundles_reach_only_their_station_and_only_the_hub_sends_them(secure_broker: tuple[Mosquitto, Path],
                                                                         leaf: str) -> None:
    broker, _ = secure_broker
    hub = Client(broker.port, f"hub.{leaf}", USERS["hub"])
    hub.c.subscribe([(f"cpe/v1/+/{leaf}/ack", 1), ("cpe/v1/+/status", 1)])
    g1 = Client(broker.port, f"gate-1.{leaf}", USERS["gate-1"])
    g1.c.subscribe([(f"cpe/v1/gate-1/{leaf}", 1), (f"cpe/v1/gate-2/{leaf}", 1)])
    assert hub.spin(lambda: len(hub.subacks) == 2) and all(code < 0x80 for code in hub.subacks)
    assert g1.spin(lambda: len(g1.subacks) == 2) and g1.subacks == [1, 0x87]
    forged = g1.c.publish(f"cpe/v1/gate-1/{leaf}", b"a bundle forged by a station", qos=1).mid
    foreign_ack = g1.c.publish(f"cpe/v1/gate-2/{leaf}/ack", b"forged ack", qos=1).mid
    own_ack = g1.c.publish(f"cpe/v1/gate-1/{leaf}/ack", b"ack", qos=1).mid
    hub.c.publish(f"cpe/v1/gate-1/{leaf}", b"bundle for gate-1", qos=1)
    assert g1.spin(lambda: len(g1.pubacks) == 3 and len(g1.got) >= 1)
    assert g1.pubacks[forged] == 0x87 and g1.pubacks[foreign_ack] == 0x87 and g1.pubacks[own_ack] == 0
    assert hub.spin(lambda: len(hub.got) >= 1)
    hub.spin(lambda: False, 0.3)
    g1.spin(lambda: False, 0.3)
    assert g1.got == [(f"cpe/v1/gate-1/{leaf}", b"bundle for gate-1")]
    assert hub.got == [(f"cpe/v1/gate-1/{leaf}/ack", b"ack")]
    hub.close()
    g1.close()


def test_only_the_hub_publishes_the_retention_state_and_every_station_reads_it(secure_broker):
    """The retained retention state (docs/retention-and-holds.md): a station cannot forge it, even retained."""
    broker, _ = secure_broker
    g1 = Client(broker.port, "gate-1.cmd", USERS["gate-1"])
    forged = g1.c.publish("cpe/v1/retention", b"a state forged by a station", qos=1, retain=True).mid
    assert g1.spin(lambda: forged in g1.pubacks) and g1.pubacks[forged] == 0x87
    hub = Client(broker.port, "hub.cr", USERS["hub"])
    sent = hub.c.publish("cpe/v1/retention", b"state 1", qos=1, retain=True).mid
    assert hub.spin(lambda: sent in hub.pubacks) and hub.pubacks[sent] < 0x80  # 0x10: no subscriber yet
    g2 = Client(broker.port, "gate-2.cmd", USERS["gate-2"])
    g2.c.subscribe([("cpe/v1/retention", 1)])
    assert g2.spin(lambda: g2.got) and g2.got == [("cpe/v1/retention", b"state 1")]
    hub.close(), g1.close(), g2.close()
