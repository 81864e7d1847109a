"""A certificate per station (issue 23) on a real Mosquitto with the shipped certificate listener:
the CN is the user name, the dynamic-security account of that name confines it to its topics;
no certificate, an expired, a revoked one and a stale CRL are refused."""

from __future__ import annotations

import json
import signal
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from central_sync.broker_accounts import build
from central_sync.config import BrokerConfig, SyncConfig, TlsConfig
from central_sync.devtools import Mosquitto, fill, open_station_db, outbox_rows
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.pki import Authority, PkiError, make_csr, new_key
from central_sync.publisher import Publisher
from polling import until

CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
SHIPPED_TLS = "/etc/mosquitto/cpe/tls/"


def certificate_listener(tls_dir: Path) -> str:
    """The shipped certificate listener's options (after its `listener` line), pointed at `tls_dir`."""
    lines = CONF.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("listener 8884"))
    block = []
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith(("listener", "#")):
            break
        block.append(line.replace(SHIPPED_TLS, f"{tls_dir}/"))
    assert "require_certificate true" in block and "use_identity_as_username true" in block
    return "\n".join(block) + "\n"


def save(cert: x509.Certificate, key: bytes | None, where: Path, name: str) -> tuple[Path, Path]:
    (where / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (where / f"{name}.key").write_bytes(key)
    return where / f"{name}.crt", where / f"{name}.key"


class CertBroker:
    """The CA, the broker's certificate and a running Mosquitto with the shipped certificate listener."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.ca = tmp, Authority(tmp / "ca")
        self.ca.init()
        save(*self.ca.issue_with_key("broker", "server", hosts=["127.0.0.1"])[::-1], tmp, "server")
        accounts = tmp / "dynamic-security.json"
        accounts.write_text(json.dumps(build({}, {}, cert_hubs=("hub",), cert_stations=("gate-1", "gate-2"))))
        plugin = next(line for line in CONF.read_text().splitlines() if line.startswith("plugin "))
        extra = f"per_listener_settings false\nallow_anonymous false\n{plugin}\nplugin_opt_config_file {accounts}"
        self.broker = Mosquitto(tmp / "b", extra, anonymous=False)
        (tmp / "ca.crt").symlink_to(self.ca.cert_path)
        (tmp / "crl.pem").symlink_to(self.ca.crl_path)
        with self.broker.conf.open("a") as conf:
            conf.write(certificate_listener(tmp))

    def tls(self, name: str) -> TlsConfig:
        return TlsConfig(ca_file=self.ca.cert_path, cert_file=self.tmp / f"{name}.crt", key_file=self.tmp / f"{name}.key")

    def issue(self, name: str, kind: str = "station", **kw: object) -> TlsConfig:
        save(*self.ca.issue_with_key(name, kind, **kw)[::-1], self.tmp, name)  # type: ignore[arg-type]
        return self.tls(name)

    def log(self) -> str:
        return (self.broker.workdir / "mosquitto.log").read_text(errors="replace")


@pytest.fixture
def pki(tmp_path):
    cb = CertBroker(tmp_path)
    with cb.broker:
        yield cb


class CertClient:
    """A bare paho client with a certificate (or none; or no TLS when `ca` is None), driven synchronously."""

    def __init__(self, port: int, client_id: str, ca: Path | None, tls: TlsConfig | None,
                 user: str | None = None, password: str | None = None) -> None:
        self.connack: int | None = None
        self.pubacks: dict[int, int] = {}
        self.subacks: list[int] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca), certfile=str(tls.cert_file) if tls else None,
                           keyfile=str(tls.key_file) if tls else None, cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc.value)
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc.value)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.extend(r.value for r in rcs)
        self.closed = False
        try:
            self.c.connect("127.0.0.1", port, 30)
        except (ssl.SSLError, OSError):
            self.closed = True

    def spin(self, cond: Callable[[], bool], timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.closed:
            if self.c.loop(0.02) not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                self.closed = True
            if cond():
                return True
        return cond()

    def accepted(self) -> bool:
        """True once the broker sent CONNACK success; False when it closed the link without one."""
        self.spin(lambda: self.connack is not None)
        return self.connack == 0


def refused_for(pki: CertBroker, why: str, tls: TlsConfig | None) -> None:
    """The broker ends the handshake without a CONNACK and logs `why` (Mosquitto 2.0 logs a failed
    verification without its cause: each test shows the cause by a control that is accepted)."""
    client = CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, tls)
    assert not client.accepted() and client.connack is None
    end = time.monotonic() + 5  # the broker writes its log line just after closing the socket
    while why not in pki.log() and time.monotonic() < end:
        time.sleep(0.02)
    assert why in pki.log()


VERIFY_FAILED = "certificate verify failed"


def test_a_station_with_its_certificate_is_confined_to_its_own_topics(pki):
    g1 = CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, pki.issue("gate-1"))
    assert g1.accepted()
    assert "u'gate-1'" in pki.log()  # the user name is the certificate's CN, whatever the client id says
    own = g1.c.publish("cpe/v1/gate-1/inspection", b"mine", qos=1).mid
    forged = g1.c.publish("cpe/v1/gate-2/inspection", b"forged", qos=1).mid
    assert g1.spin(lambda: len(g1.pubacks) == 2)
    assert g1.pubacks[own] < 0x80 and g1.pubacks[forged] == 0x87
    g1.c.subscribe([("cpe/v1/gate-1/ack", 1), ("cpe/v1/gate-2/ack", 1), ("$share/hub/cpe/v1/+/inspection", 1)])
    assert g1.spin(lambda: len(g1.subacks) == 3) and g1.subacks == [1, 0x87, 0x87]


def test_a_certificate_sends_no_password_and_cannot_borrow_another_name(pki):
    """The user name a client sends is ignored on this listener: gate-2's certificate claiming to be
    gate-1 still publishes as gate-2."""
    c = CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, pki.issue("gate-2"), "gate-1", "anything")
    assert c.accepted()
    mid = c.c.publish("cpe/v1/gate-1/inspection", b"forged", qos=1).mid
    assert c.spin(lambda: mid in c.pubacks) and c.pubacks[mid] == 0x87


def test_without_a_certificate_refused(pki):
    refused_for(pki, "peer did not return a certificate", None)


def test_an_expired_certificate_refused(pki):
    expired = pki.issue("gate-1", days=30, now=datetime.now(UTC) - timedelta(days=60))
    refused_for(pki, VERIFY_FAILED, expired)
    assert CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, pki.issue("gate-1")).accepted()


def test_a_certificate_of_another_ca_refused(pki, tmp_path):
    other = Authority(tmp_path / "other-ca")
    other.init("impostor-ca")
    key, cert = other.issue_with_key("gate-1")
    refused_for(pki, VERIFY_FAILED, TlsConfig(
        ca_file=pki.ca.cert_path, cert_file=save(cert, key, tmp_path, "impostor")[0], key_file=tmp_path / "impostor.key"))


def test_a_revoked_certificate_refused_once_the_broker_rereads_the_crl(pki):
    tls = pki.issue("gate-1")
    assert CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, tls).accepted()
    pki.ca.revoke("gate-1")
    assert pki.broker.proc is not None
    pki.broker.proc.send_signal(signal.SIGHUP)  # Mosquitto 2.0 re-reads crlfile on SIGHUP (docs/pki.md)
    end = time.monotonic() + 5  # the reload is asynchronous: try until a handshake is refused
    while CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, tls).accepted() and time.monotonic() < end:
        time.sleep(0.05)
    refused_for(pki, VERIFY_FAILED, tls)
    assert CertClient(pki.broker.port, "gate-2.sync", pki.ca.cert_path, pki.issue("gate-2")).accepted()


def test_a_stale_crl_locks_every_station_out(pki):
    """Why the hub alarms ahead (test_pki_alarms): past its nextUpdate the CRL refuses everyone."""
    tls = pki.issue("gate-1")
    pki.ca.write_crl(now=datetime.now(UTC) - timedelta(days=2), days=1)
    pki.broker.kill()
    pki.broker.start()
    refused_for(pki, VERIFY_FAILED, tls)
    pki.ca.write_crl()  # `edge-hub pki crl`
    pki.broker.kill()
    pki.broker.start()
    assert CertClient(pki.broker.port, "gate-1.sync", pki.ca.cert_path, tls).accepted()


async def test_station_and_hub_sync_with_certificates(pki):
    db = pki.tmp / "st.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 20, alert_every=5)
    conn.close()
    store = open_store(str(pki.tmp / "hub.db"))
    hub_cfg = BrokerConfig(port=pki.broker.port, username="hub", tls=pki.issue("hub", "hub"))
    station = SyncConfig(port=pki.broker.port, username="gate-1", tls=pki.issue("gate-1"))
    async with Hub(hub_cfg, store, "hub-pki"), Publisher(station, "gate-1", db, pki.tmp) as pub:
        await until(lambda: outbox_rows(db) == 0, "the outbox drained", in_thread=True)
        assert pub.stats()["counters"].get("puback_0x87", 0) == 0
    assert store.query("SELECT count(*) FROM records") == [(20,)]


def test_a_request_whose_subject_is_not_the_station_is_refused(tmp_path):
    ca = Authority(tmp_path)
    ca.init()
    key = new_key()
    request = make_csr("gate-2", key).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PkiError, match="subject is 'CN=gate-2', not CN=gate-1"):
        ca.sign_csr("gate-1", request)
    assert ca.index() == []
    cert = ca.sign_csr("gate-2", request)
    assert cert.subject.rfc4514_string() == "CN=gate-2" and cert.public_key() == key.public_key()
    assert [r.subject for r in ca.index()] == ["gate-2"]


def test_a_station_certificate_names_a_station_id_and_no_other_accounts_name(tmp_path):
    """The broker takes a certificate's name as its account: certificates were issued for CN=ST_01, CN=.. and
    'st-01\\n' (not station ids), and a station certificate for the name of the hub's own certificate."""
    ca = Authority(tmp_path)
    ca.init()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    for name in ("ST_01", "..", "st-01\n"):  # a request made by hand, not by `edge pki csr`
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(new_key(), hashes.SHA256())
        with pytest.raises(PkiError):
            ca.sign_csr(name, request.public_bytes(serialization.Encoding.PEM))
    ca.issue_with_key("hub-01", "hub")
    request = make_csr("hub-01", new_key()).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PkiError, match="name of a hub certificate"):
        ca.sign_csr("hub-01", request)
    assert [r.subject for r in ca.index()] == ["hub-01"]
    ca.sign_csr("gate-7", make_csr("gate-7", new_key()).public_bytes(serialization.Encoding.PEM))
    ca.issue_with_key("gate-7", "server", hosts=("gate-7.local",))  # its screen's HTTPS may share the name


def test_a_key_written_over_a_wider_file_is_made_owner_only(tmp_path):
    from central_sync.pki import write_private

    path = tmp_path / "st.key"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_certificate_account_has_no_password_to_guess(tmp_path):
    """The plugin's account `gate-1` made for a certificate refuses every password log-in."""
    accounts = tmp_path / "dynamic-security.json"
    accounts.write_text(json.dumps(build({}, {"gate-2": "pw-2"}, cert_stations=("gate-1",))))
    plugin = next(line for line in CONF.read_text().splitlines() if line.startswith("plugin "))
    extra = f"per_listener_settings false\nallow_anonymous false\n{plugin}\nplugin_opt_config_file {accounts}"
    with Mosquitto(tmp_path / "b", extra, anonymous=False) as broker:
        answers = []
        for n, (user, pw) in enumerate((("gate-1", ""), ("gate-1", "gate-1"), ("gate-1", None), ("gate-2.sync", "pw-2"))):
            client = CertClient(broker.port, f"probe-{n}", None, None, user, pw)
            client.accepted()
            answers.append(client.connack)
    assert answers == [0x87, 0x87, 0x87, 0]


def test_the_enrolment_commands_end_to_end(tmp_path, capsys):
    """`edge pki csr` on the station, `edge-hub pki issue --csr` on the hub; a request for another
    station is refused with one sentence and exit status 1; `revoke`, `list` and `crl` follow."""
    from central_sync.hub.cli import main as hub
    from edge.cli import main as edge

    ca = ["pki", "--dir", str(tmp_path / "ca")]
    assert hub([*ca, "init"]) == 0
    assert edge(["pki", "csr", "gate-1", "--key", str(tmp_path / "g1.key"), "--out", str(tmp_path / "g1.csr")]) == 0
    assert (tmp_path / "g1.key").stat().st_mode & 0o777 == 0o600
    assert edge(["pki", "csr", "gate-1", "--key", str(tmp_path / "g1.key"), "--out", str(tmp_path / "x.csr")]) == 1
    capsys.readouterr()
    assert hub([*ca, "issue", "gate-2", "--csr", str(tmp_path / "g1.csr"), "--out", str(tmp_path / "g2.crt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "subject is 'CN=gate-1', not CN=gate-2; refused" in err
    assert not (tmp_path / "g2.crt").exists()
    (tmp_path / "junk.csr").write_text("not a request")
    assert hub([*ca, "issue", "gate-1", "--csr", str(tmp_path / "junk.csr")]) == 1
    assert "junk.csr is not a PEM certificate request" in capsys.readouterr().err
    assert hub([*ca, "issue", "gate-1", "--csr", str(tmp_path / "g1.csr"), "--out", str(tmp_path / "g1.crt")]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "g1.crt").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "g1.key").read_bytes(), None)
    assert cert.public_key() == key.public_key() and cert.subject.rfc4514_string() == "CN=gate-1"
    assert 396 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 397
    assert hub([*ca, "revoke", "gate-1"]) == 0 and hub([*ca, "revoke", "gate-1"]) == 1
    assert "no unrevoked certificate of 'gate-1'" in capsys.readouterr().err
    crl = x509.load_pem_x509_crl(Authority(tmp_path / "ca").crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert hub([*ca, "list"]) == 0 and "revoked" in capsys.readouterr().out
    assert hub([*ca, "crl", "--days", "14"]) == 0
    assert "next update" in capsys.readouterr().out
    assert hub(["pki", "--dir", str(tmp_path / "none"), "list"]) == 0  # an empty CA directory lists nothing
    assert hub(["pki", "--dir", str(tmp_path / "none"), "crl"]) == 1
    assert "run `edge-hub pki init` first" in capsys.readouterr().err


async def test_the_hub_process_logs_in_with_its_certificate_and_warns_of_the_crl(pki, hubs):
    """`edge-hub run` as operators start it: certificate log-in, --pki-dir; a CRL with five days
    left is logged as pki.crl_lapsing and shown in /metrics, while a station's records arrive."""

    pki.ca.write_crl(now=datetime.now(UTC) - timedelta(days=25), days=30)
    tls = pki.issue("hub", "hub")
    hub = hubs(str(pki.tmp / "hub.db"), pki.broker.port, "hub-proc", http=True,
               extra=("--username", "hub", "--tls-ca", str(tls.ca_file), "--tls-cert", str(tls.cert_file),
                      "--tls-key", str(tls.key_file), "--pki-dir", str(pki.ca.root), "--plain-http-cookies"))
    db = pki.tmp / "st.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 10)
    conn.close()
    station = SyncConfig(port=pki.broker.port, username="gate-1", tls=pki.issue("gate-1"))
    async with Publisher(station, "gate-1", db, pki.tmp):
        await until(lambda: outbox_rows(db) == 0, "the hub process acknowledged every record", timeout=30, in_thread=True)
    def metrics() -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{hub.http_port}/metrics").text
        except httpx.TransportError:
            return ""  # the HTTP server starts after ingest

    text = await until(metrics, "the hub serves /metrics", check=lambda t: "hub_crl_warning" in t, in_thread=True)
    assert "hub_crl_warning 1.0" in text and "hub_certificates_expiring 0.0" in text
    await until(lambda: "pki.crl_lapsing" in hub.log.read_text(), "the hub logged the CRL alarm")
    assert "u'hub'" in pki.log() and "u'gate-1'" in pki.log()
