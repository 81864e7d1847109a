"""The hub's small certificate authority: one certificate per station, the hub's and the broker's.

    ca.key, ca.crt          the CA (ECDSA P-256: every OpenSSL that Mosquitto links accepts it)
    index.json              every certificate issued: serial, subject, kind, validity, revocation
    certs/SERIAL.crt        each certificate issued
    crl.pem                 the revocation list Mosquitto reads (`crlfile`), with its nextUpdate

A station's subject CN is its station id: the broker takes it as the user name
(`use_identity_as_username true`), so the ACLs bind to the certificate, not to a chosen client id.
Keys are made on the station where possible (`edge pki csr`); the hub signs the request only when
its subject is the station named. Mosquitto refuses every client once the CRL's nextUpdate has
passed, so `crl_status` tells how long the CRL has left and the hub alarms ahead of it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import structlog

from central_sync.errors import SyncError

STATION_DAYS = 397
CA_DAYS = 3650
CRL_DAYS = 30
CRL_WARN = timedelta(days=7)
EXPIRY_WARN = timedelta(days=30)
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
Kind = Literal["station", "hub", "server"]
STATION_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a station id (edge.config StationSection.id)
log = structlog.get_logger("central_sync.pki")


class PkiError(SyncError):
    """A CA operation refused: no CA, a bad name, a CSR whose subject is not the station, an unknown station."""


@dataclass(frozen=True)
class Issued:
    """One line of the index: a certificate the CA signed."""

    serial: int
    subject: str
    kind: str
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def to_json(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, row: dict) -> "Issued":
        at = {k: datetime.fromisoformat(row[k]) if row.get(k) else None for k in ("not_before", "not_after", "revoked_at")}
        return cls(serial=int(row["serial"]), subject=row["subject"], kind=row["kind"],
                   not_before=at["not_before"], not_after=at["not_after"], revoked_at=at["revoked_at"])  # type: ignore[arg-type]


@dataclass(frozen=True)
class CrlStatus:
    """How long the CRL Mosquitto reads has left; `warn` once fewer than the warning period remain."""

    path: str
    next_update: datetime | None
    seconds_left: float
    warn: bool
    error: str | None = None


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (0600, never readable by others for an instant, also when the file
    was there before with wider permissions: O_CREAT's mode applies to a new file only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _check_name(name: str, kind: str = "") -> str:
    """The subject, or PkiError: a station's must be a station id (the broker takes it as the account name)."""
    if not NAME.fullmatch(name):  # fullmatch: `$` let a trailing newline through
        raise PkiError(f"certificate subject {name!r} must be 1 to 64 letters, digits or _.-")
    if kind == "station" and not STATION_NAME.fullmatch(name):
        raise PkiError(f"a station certificate's subject {name!r} must be a station id: 1 to 63 lower-case letters, "
                       f"digits or '-', not starting with '-'")
    return name


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    """A request for `subject` (a station id), signed by the station's own key (`edge pki csr`)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _check_name(subject))])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())


def write_key_and_csr(subject: str, key_path: Path, csr_path: Path) -> None:
    """The station side: a fresh key (0600) and its request; only the request leaves the station."""
    key = new_key()
    write_private(key_path, _pem_key(key))
    csr_path.write_bytes(make_csr(subject, key).public_bytes(serialization.Encoding.PEM))


class Authority:
    """The CA in directory `root` (see the module docstring for its files)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.key_path, self.cert_path = self.root / "ca.key", self.root / "ca.crt"
        self.index_path, self.crl_path = self.root / "index.json", self.root / "crl.pem"

    # -- the CA itself ----------------------------------------------------------------------------
    def init(self, name: str = "checkpoint-edge-ca", days: int = CA_DAYS, now: datetime | None = None) -> x509.Certificate:
        """Make the CA key and self-signed certificate, an empty index and a first CRL."""
        if self.key_path.exists():
            raise PkiError(f"a CA already exists in {self.root}; remove {self.key_path} first to start over")
        at, key = _now(now), new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(at - timedelta(minutes=5))
                .not_valid_after(at + timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        write_private(self.key_path, _pem_key(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._save([])
        self.write_crl(now=at)
        return cert

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        except FileNotFoundError as exc:
            raise PkiError(f"no CA in {self.root}: run `edge-hub pki init` first") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"the CA key {self.key_path} is not an ECDSA key; this CA signs with P-256 only")
        return key, cert

    def index(self) -> list[Issued]:
        if not self.index_path.exists():
            return []
        return [Issued.from_json(row) for row in json.loads(self.index_path.read_text(encoding="utf-8"))]

    def _save(self, rows: Sequence[Issued]) -> None:
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps([r.to_json() for r in rows], indent=1), encoding="utf-8")
        tmp.replace(self.index_path)

    # -- issuing ----------------------------------------------------------------------------------
    def sign_csr(self, station: str, csr_pem: bytes, days: int = STATION_DAYS, now: datetime | None = None,
                 kind: Kind = "station", hosts: Sequence[str] = ()) -> x509.Certificate:
        """Sign a station's request; refused unless it verifies and its subject is exactly CN=station.
        A `server` certificate (a station screen's HTTPS) names its `hosts`, which a browser checks."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise PkiError(f"the request for station {station!r} is not signed by its own key")
        cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cns != [station] or len(csr.subject) != 1:
            raise PkiError(f"the request's subject is {csr.subject.rfc4514_string()!r}, not CN={station}; "
                           f"refused (a station signs its own id)")
        if kind == "server" and not hosts:
            raise PkiError(f"a server certificate for {station!r} needs its host names or addresses (--host)")
        return self._issue(_check_name(station, kind), kind, csr.public_key(), days, now, hosts)  # type: ignore[arg-type]

    def issue_with_key(self, subject: str, kind: Kind = "station", days: int = STATION_DAYS,
                       now: datetime | None = None, hosts: Sequence[str] = ()) -> tuple[bytes, x509.Certificate]:
        """Make the key here and sign it (the demo, tests, the hub's and the broker's own)."""
        key = new_key()
        return _pem_key(key), self._issue(_check_name(subject, kind), kind, key.public_key(), days, now, hosts)

    def _issue(self, subject: str, kind: Kind, public_key: ec.EllipticCurvePublicKey, days: int,
               now: datetime | None, hosts: Sequence[str] = ()) -> x509.Certificate:
        ca_key, ca_cert = self._ca()
        at = _now(now)
        logins = ("station", "hub")  # the broker takes a client certificate's name as its account, its role from config
        if kind in logins and (held := [r for r in self.index() if r.subject == subject and r.kind in logins
                                        and r.kind != kind and r.revoked_at is None]):
            raise PkiError(f"{subject!r} is the name of a {held[0].kind} certificate (serial {held[0].serial:x}) this CA "
                           f"issued and has not revoked: a {kind} certificate of that name would log in as it")
        usage = ExtendedKeyUsageOID.SERVER_AUTH if kind == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(ca_cert.subject).public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(at - timedelta(minutes=5)).not_valid_after(at + timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, True, False, True, False, False, False, False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (self.root / "certs").mkdir(exist_ok=True)
        (self.root / "certs" / f"{cert.serial_number:x}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._save([*self.index(), Issued(cert.serial_number, subject, kind, cert.not_valid_before_utc,
                                          cert.not_valid_after_utc)])
        return cert

    # -- revocation -------------------------------------------------------------------------------
    def revoke(self, subject: str, now: datetime | None = None, crl_days: int = CRL_DAYS) -> list[int]:
        """Revoke every live certificate of `subject` and re-issue the CRL; the serials revoked."""
        at, rows = _now(now), self.index()
        hit = [r.serial for r in rows if r.subject == subject and r.revoked_at is None]
        if not hit:
            raise PkiError(f"no unrevoked certificate of {subject!r} in {self.index_path}")
        self._save([replace(r, revoked_at=at) if r.serial in hit else r for r in rows])
        self.write_crl(now=at, days=crl_days)
        return hit

    def write_crl(self, now: datetime | None = None, days: int = CRL_DAYS) -> x509.CertificateRevocationList:
        """(Re-)issue the CRL with nextUpdate `days` ahead; install it where Mosquitto's crlfile points."""
        ca_key, ca_cert = self._ca()
        at = _now(now)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
                   .last_update(at - timedelta(minutes=5)).next_update(at + timedelta(days=days)))
        for row in self.index():
            if row.revoked_at is not None:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(row.serial).revocation_date(row.revoked_at).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        tmp = self.crl_path.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.crl_path)
        return crl

    def expiring(self, now: datetime | None = None, within: timedelta = EXPIRY_WARN) -> list[Issued]:
        """Live certificates that expire within `within` (or have expired), soonest first; a subject
        whose newer certificate outlives the window is not listed."""
        at = _now(now)
        newest: dict[str, Issued] = {}
        for row in self.index():
            if row.revoked_at is None and (row.subject not in newest or row.not_after > newest[row.subject].not_after):
                newest[row.subject] = row
        return sorted((r for r in newest.values() if r.not_after - at <= within), key=lambda r: r.not_after)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def crl_status(path: Path, now: datetime | None = None, warn_before: timedelta = CRL_WARN) -> CrlStatus:
    """Read the CRL at `path`: a missing or unreadable one warns at once (Mosquitto would not start)."""
    at = _now(now)
    try:
        crl = x509.load_pem_x509_crl(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        return CrlStatus(str(path), None, 0.0, True, f"the CRL {path} cannot be read: {exc}")
    nxt = crl.next_update_utc
    if nxt is None:
        return CrlStatus(str(path), None, 0.0, True, f"the CRL {path} has no nextUpdate")
    left = (nxt - at).total_seconds()
    return CrlStatus(str(path), nxt, left, left <= warn_before.total_seconds())


def report(ca: Authority, now: datetime | None = None, warn_before: timedelta = CRL_WARN,
           within: timedelta = EXPIRY_WARN) -> dict:
    """What the control room and /metrics show: the CRL's time left and the certificates expiring."""
    at = _now(now)
    crl = crl_status(ca.crl_path, at, warn_before)
    return {"crl": {"next_update": crl.next_update.isoformat() if crl.next_update else None,
                    "seconds_left": crl.seconds_left, "warn": crl.warn, "error": crl.error},
            "expiring": [{"subject": r.subject, "kind": r.kind, "not_after": r.not_after.isoformat(),
                          "days_left": round(r.days_left(at), 1)} for r in ca.expiring(at, within)]}


class CrlWatch:
    """The hub's alarm on the broker's CRL: `pki.crl_lapsing` (warning) when it enters its warning
    period or cannot be read, `pki.crl_renewed` when it leaves it; logged on the change, not every check."""

    def __init__(self, path: Path, warn_before: timedelta = CRL_WARN) -> None:
        self.path, self.warn_before, self.warned = Path(path), warn_before, False

    def check(self, now: datetime | None = None) -> CrlStatus:
        status = crl_status(self.path, now, self.warn_before)
        if status.warn and not self.warned:
            log.warning("pki.crl_lapsing", path=status.path, error=status.error, hours_left=round(status.seconds_left / 3600, 1),
                        next_update=status.next_update.isoformat() if status.next_update else None,
                        fix="edge-hub pki crl, then install crl.pem and reload the broker")
        elif self.warned and not status.warn:
            log.info("pki.crl_renewed", path=status.path, next_update=status.next_update.isoformat() if status.next_update else None)
        self.warned = status.warn
        return status
