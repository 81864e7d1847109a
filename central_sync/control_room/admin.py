"""Control-room administration from the shell.

    python -m central_sync.control_room.admin keygen --private hub.key --public hub.pub
    python -m central_sync.control_room.admin add-user --db URL NAME ROLE [--password-file F] [--lang zh-Hant]
    python -m central_sync.control_room.admin verify-audit --db URL
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from central_sync.commands import generate_keypair
from central_sync.control_room import audit, auth, db
from central_sync.control_room.i18n import LANGS
from central_sync.errors import SyncError
from central_sync.hub.store import open_store


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="control-room-admin", description="Checkpoint Edge control-room administration")
    sub = ap.add_subparsers(dest="cmd", required=True)
    key = sub.add_parser("keygen", help="new Ed25519 key pair for signing commands (public key goes to every station)")
    key.add_argument("--private", type=Path, required=True)
    key.add_argument("--public", type=Path, required=True)
    user = sub.add_parser("add-user", help="create or replace a control-room user")
    user.add_argument("name")
    user.add_argument("role", choices=auth.ROLES)
    user.add_argument("--password-file", type=Path, help="first line is the password (default: prompt)")
    user.add_argument("--lang", choices=LANGS)
    check = sub.add_parser("verify-audit", help="check the audit log's hash chain")
    for sp in (user, check):
        sp.add_argument("--db", default="hub.sqlite3", help="sqlite path or postgresql://...")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "keygen":
            if args.private.exists():
                print(f"control-room-admin: {args.private} exists; not overwriting a signing key", file=sys.stderr)
                return 1
            generate_keypair(args.private, args.public)
            print(f"wrote {args.private} (keep secret) and {args.public} (pin on every station)")
            return 0
        store = open_store(args.db)
        db.migrate(store)
        if args.cmd == "add-user":
            password = (args.password_file.read_text().splitlines()[0] if args.password_file
                        else getpass.getpass(f"password for {args.name}: "))
            _, existed = auth.put_user(store, args.name, args.role, password, args.lang)
            audit.append(store, f"cli:{getpass.getuser()}", "user.replace" if existed else "user.create", args.name,
                         {"role": args.role, "lang": args.lang, "existed": existed, "sessions_ended": existed})
            print(f"user {args.name} ({args.role}) {'replaced; its sessions ended' if existed else 'saved'}")
            return 0
        checked, broken, why = audit.verify(store)
        print(f"{checked} entries, chain intact" if broken is None else f"chain broken at entry {broken}: {why}")
        return 0 if broken is None else 2
    except (SyncError, OSError) as exc:
        print(f"control-room-admin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
