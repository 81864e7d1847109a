"""`edge-hub pki`: the hub's certificate authority (central_sync.pki) from the command line.

    edge-hub pki init [--dir D] [--name CN]
    edge-hub pki issue STATION --csr FILE [--out CRT]     sign a station's request (`edge pki csr`)
    edge-hub pki issue NAME --make-key [--kind station|hub|server] [--host H ...] --out CRT --key-out KEY
    edge-hub pki issue NAME --csr FILE --kind server --host H [--host H ...]   an HTTPS certificate (screen, control room)
    edge-hub pki revoke STATION                           revoke and re-issue the CRL
    edge-hub pki list                                     every certificate, its expiry and state
    edge-hub pki crl [--days N]                           re-issue the CRL (before its nextUpdate!)
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from central_sync.pki import CA_DAYS, CRL_DAYS, STATION_DAYS, Authority, PkiError, crl_status, write_private

DEFAULT_DIR = Path(os.environ.get("EDGE_HUB_PKI", "/var/lib/checkpoint-hub/pki"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    pki = sub.add_parser("pki", help="the hub's certificate authority: station, hub and broker certificates")
    pki.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the CA's directory (default $EDGE_HUB_PKI)")
    act = pki.add_subparsers(dest="pki_cmd", required=True)
    init = act.add_parser("init", help="make the CA key, certificate and a first CRL")
    init.add_argument("--name", default="checkpoint-edge-ca")
    init.add_argument("--days", type=int, default=CA_DAYS)
    issue = act.add_parser("issue", help="sign a station's request, or make a key and certificate here")
    issue.add_argument("subject", help="station id (or the hub's / broker's name with --make-key)")
    how = issue.add_mutually_exclusive_group(required=True)
    how.add_argument("--csr", type=Path, help="the station's request (its subject must be CN=STATION)")
    how.add_argument("--make-key", action="store_true", help="make the key here (demo, the hub's and broker's own)")
    issue.add_argument("--kind", choices=("station", "hub", "server"), default="station")
    issue.add_argument("--host", action="append", default=[], help="DNS name or IP address of the broker or web server (server kind; repeat for more)")
    issue.add_argument("--days", type=int, default=STATION_DAYS)
    issue.add_argument("--out", type=Path, help="certificate file (default: print it)")
    issue.add_argument("--key-out", type=Path, help="where --make-key writes the key (0600)")
    revoke = act.add_parser("revoke", help="revoke a subject's certificates and re-issue the CRL")
    revoke.add_argument("subject")
    revoke.add_argument("--crl-days", type=int, default=CRL_DAYS)
    act.add_parser("list", help="every certificate issued, its expiry and whether it is revoked")
    crl = act.add_parser("crl", help="re-issue the CRL (Mosquitto refuses everyone once its nextUpdate passed)")
    crl.add_argument("--days", type=int, default=CRL_DAYS)


def _issue(ca: Authority, args: argparse.Namespace) -> str:
    if args.csr is not None:
        try:
            request = args.csr.read_bytes()
        except OSError as exc:
            raise PkiError(f"the request file {args.csr} cannot be read: {exc.strerror}") from exc
        try:
            cert = ca.sign_csr(args.subject, request, days=args.days, kind=args.kind, hosts=args.host)
        except ValueError as exc:
            raise PkiError(f"the request file {args.csr} is not a PEM certificate request") from exc
    else:
        if args.key_out is None:
            raise PkiError("--make-key needs --key-out FILE for the new key")
        key, cert = ca.issue_with_key(args.subject, args.kind, days=args.days, hosts=args.host)
        write_private(args.key_out, key)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if args.out is None:
        return pem.decode()
    args.out.write_bytes(pem)
    return f"issued {args.subject}: serial {cert.serial_number:x}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"


def _list(ca: Authority) -> str:
    now = datetime.now(UTC)
    rows = [f"{'serial':<40} {'subject':<24} {'kind':<8} {'expires':<11} state"]
    for r in ca.index():
        state = "revoked" if r.revoked_at else ("expired" if r.not_after <= now else f"{r.days_left(now):.0f} days left")
        rows.append(f"{r.serial:<40x} {r.subject:<24} {r.kind:<8} {r.not_after:%Y-%m-%d} {state}")
    crl = crl_status(ca.crl_path, now)
    rows.append(crl.error or f"CRL next update {crl.next_update:%Y-%m-%d %H:%M} UTC"
                + (" — re-issue it now: edge-hub pki crl" if crl.warn else ""))
    return "\n".join(rows)


def run(args: argparse.Namespace) -> str:
    """Carry out one `pki` action; what to print. Raises PkiError (one sentence) when refused."""
    ca = Authority(args.dir)
    if args.pki_cmd == "init":
        cert = ca.init(args.name, days=args.days)
        return f"CA {args.name} in {args.dir}: {ca.cert_path}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"
    if args.pki_cmd == "issue":
        return _issue(ca, args)
    if args.pki_cmd == "revoke":
        serials = ca.revoke(args.subject, crl_days=args.crl_days)
        return f"revoked {args.subject} (serials {', '.join(f'{s:x}' for s in serials)}); CRL {ca.crl_path} re-issued"
    if args.pki_cmd == "crl":
        crl = ca.write_crl(days=args.days)
        return f"CRL {ca.crl_path} re-issued, next update {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
    return _list(ca)
