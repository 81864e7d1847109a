"""The broker's accounts and what each may do, as Mosquitto's dynamic-security plugin reads them.

    python -m central_sync.broker_accounts --hub hub=/etc/cpe/hub.pw \\
        --station gate-1=/root/gate-1.pw --station gate-2=/root/gate-2.pw > dynamic-security.json

Why the plugin and not an `acl_file`: Mosquitto 2.0's acl_file never checks SUBSCRIBE, so any
account could join the hub's shared subscription (`$share/hub/...`); the broker then hands it its
share of the records and drops them at delivery (read denied), starving the hub. The plugin checks
subscriptions (a refused one is answered SUBACK 0x87). Its ACLs do not substitute `%u` in 2.0, so
every station gets its own role. Passwords are stored as PBKDF2-SHA512 with a random salt.

One account per connection (issue 22 item 7): a second connection with a client id in use closes the
first, so the shipped conf sets `use_username_as_clientid true` and an account can only ever hold its
own id. Each entry NAME=PASSWORD-FILE therefore becomes one account `NAME.LINK` per connection the
client opens (central_sync.mqtt.STATION_LINKS / HUB_LINKS), all with NAME's password and role; a
client configured with user name NAME logs in as `NAME.LINK` (central_sync.mqtt.login).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from central_sync import protocol as p
from central_sync.errors import SyncError
from central_sync.mqtt import HUB_LINKS, STATION_LINKS, login
from central_sync.retention import TOPIC as RETENTION_TOPIC

ITERATIONS = 10_000
STATION_SENDS = ("status", "inspection", "alert", "review", "tip", "batch", "blob/#", "cmd/result", "diag/#", "risk/ack",
                 "model/ack")
STATION_READS = ("ack", "cmd", "cmd/signed", "diag/#", "risk", "model")
HUB_SENDS = ("ack", "cmd", "cmd/signed", "risk", "model")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class AccountsError(SyncError):
    """A broker account that cannot be written (bad name, unreadable password file)."""


def _password(pw: str) -> dict:
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, ITERATIONS, 64)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": ITERATIONS}


def _acl(kind: str, topic: str) -> dict:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def hub_role(group: str = p.SHARE_GROUP) -> dict:
    subs = [t for t in p.hub_subscriptions(group)] + [f"{p.ROOT}/+/cmd/result", f"{p.ROOT}/+/risk/ack", f"{p.ROOT}/+/model/ack"]
    return {"rolename": "hub", "acls": [_acl("subscribePattern", t) for t in subs]
            + [_acl("publishClientSend", f"{p.ROOT}/+/{leaf}") for leaf in HUB_SENDS]
            + [_acl("publishClientSend", RETENTION_TOPIC)]}


def station_role(station: str) -> dict:
    own = f"{p.ROOT}/{station}"
    return {"rolename": f"station-{station}",
            "acls": [_acl("publishClientSend", f"{own}/{leaf}") for leaf in STATION_SENDS]
            + [_acl("subscribePattern", f"{own}/{leaf}") for leaf in STATION_READS]
            + [_acl("subscribePattern", RETENTION_TOPIC)]}  # the hub's one retention state for every station


def _client(username: str, rolename: str, pw: str | None) -> dict:
    """An account; without a password it can only log in with a certificate whose CN is `username`."""
    return {"username": username, "roles": [{"rolename": rolename}], **(_password(pw) if pw is not None else {})}


def build(hubs: dict[str, str], stations: dict[str, str], group: str = p.SHARE_GROUP,
          cert_hubs: tuple[str, ...] = (), cert_stations: tuple[str, ...] = ()) -> dict:
    """The plugin's configuration: `hubs` and `stations` map a client's user name to its password
    (a station's is its station id; one per hub process). Each gives one account per connection,
    `NAME.LINK`; everything not granted is refused (subscribe and publish).

    `cert_hubs` and `cert_stations` log in with a certificate on the listener that has
    `use_identity_as_username true`: the broker takes the certificate's CN as the user name for
    every connection, so each gets one account named by its CN, without a password (docs/pki.md)."""
    for name in (*hubs, *stations, *cert_hubs, *cert_stations):
        if not NAME.match(name):
            raise AccountsError(f"broker account name {name!r} must be 1 to 64 letters, digits or _.-")
    if both := sorted((set(hubs) | set(cert_hubs)) & (set(stations) | set(cert_stations))):
        raise AccountsError(f"broker account name {both[0]!r} is given both as a hub and as a station")
    _refuse_clashes(_password_logins(hubs, stations), (*cert_hubs, *cert_stations))
    clients = [_client(login(u, link), "hub", pw) for u, pw in hubs.items() for link in HUB_LINKS]
    clients += [_client(login(s, link), f"station-{s}", pw) for s, pw in stations.items() for link in STATION_LINKS]
    clients += [_client(u, "hub", None) for u in cert_hubs]
    clients += [_client(s, f"station-{s}", None) for s in cert_stations]
    everyone = sorted(set(stations) | set(cert_stations))
    return {"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                                 "subscribe": False, "unsubscribe": True},
            "clients": clients, "groups": [],
            "roles": [hub_role(group)] + [station_role(s) for s in everyone]}


def _password_logins(hubs: dict[str, str], stations: dict[str, str]) -> dict[str, list[str]]:
    """Each password client's name to the accounts (and client ids) its connections log in as."""
    return {**{u: [login(u, link) for link in HUB_LINKS] for u in hubs},
            **{s: [login(s, link) for link in STATION_LINKS] for s in stations}}


def _refuse_clashes(logins: dict[str, list[str]], certs: tuple[str, ...]) -> None:
    """AccountsError when a certificate account has a password client's name or one of its connections' names: the
    plugin got two accounts of one name, or one client two ways in whose connections share client ids."""
    for cert in certs:
        for name, accounts in logins.items():
            if cert == name or cert in accounts:
                raise AccountsError(f"certificate account {cert!r} clashes with password account {name!r} (its "
                                    f"connections log in as {', '.join(accounts)}): a client logs in by password or "
                                    "by certificate, each under a name of its own")


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise AccountsError(f"{item!r} is not NAME=PASSWORD-FILE")
        try:
            out[name] = Path(path).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise AccountsError(f"the password file {path} of account {name!r} cannot be read or is empty") from exc
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m central_sync.broker_accounts", description=__doc__.splitlines()[0])
    ap.add_argument("--hub", action="append", default=[], help="NAME=PASSWORD-FILE of a hub account")
    ap.add_argument("--station", action="append", default=[], help="STATION-ID=PASSWORD-FILE of a station account")
    ap.add_argument("--cert-hub", action="append", default=[], help="CN of a hub that logs in with a certificate")
    ap.add_argument("--cert-station", action="append", default=[], help="station id (its certificate's CN) of a "
                    "station that logs in with a certificate")
    args = ap.parse_args(argv)
    try:
        print(json.dumps(build(_pairs(args.hub), _pairs(args.station), cert_hubs=tuple(args.cert_hub),
                               cert_stations=tuple(args.cert_station)), indent=1))
    except AccountsError as exc:
        print(f"broker_accounts: {exc}", file=sys.stderr)
        return 78
    return 0


if __name__ == "__main__":
    sys.exit(main())
