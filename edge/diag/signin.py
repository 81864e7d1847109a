"""Who runs the plan: the technician signs in with badge + PIN against the station's users.

The same users, PIN check and lockout as the station screen (`edge.auth`); diagnostics need the
role technician or supervisor. The PIN is read from a hidden prompt, or as one line of stdin with
`--pin-stdin`, never from the command line (it would sit in the shell history and `ps`).
"""

from __future__ import annotations

import getpass
import io
import os
import sys
from pathlib import Path
from typing import IO

from edge import audit, auth
from edge.config import StationConfig
from edge.diag.context import DiagError
from edge.errors import StoreError
from edge.store import Store

ALLOWED_ROLES = ("technician", "supervisor")


class SignInRefused(DiagError):
    """The badge and PIN were not accepted, or the user may not run diagnostics."""


def sign_in(cfg: StationConfig, badge: str, pin: str) -> auth.User:
    """The authenticated user allowed to run diagnostics, else SignInRefused; the sign-in is audited."""
    policy = auth.SessionPolicy(max_failed=cfg.web.max_failed_signins, lockout_s=cfg.web.lockout_s)
    try:
        with Store(Path(cfg.station.data_dir), station=cfg.station.id) as store:
            return _check(store, cfg.station.id, badge, pin, policy)
    except StoreError as exc:
        raise SignInRefused(f"the station's users cannot be read: {exc}") from exc


def _check(store: Store, station: str, badge: str, pin: str, policy: auth.SessionPolicy) -> auth.User:
    auth.ensure_schema(store.conn)
    audit.ensure_schema(store.conn)
    try:
        user = auth.authenticate(store.conn, badge, pin, policy)
    except auth.AuthError as exc:
        raise SignInRefused(f"sign-in of badge {badge} refused: {exc}") from exc
    if user.role not in ALLOWED_ROLES:
        raise SignInRefused(f"badge {user.badge} ({user.name}) has role {user.role}; diagnostics need the role "
                            f"{' or '.join(ALLOWED_ROLES)}")
    audit.append(store.conn, user.badge, "diag.signin", station, {"role": user.role})
    return user


def read_pin(badge: str, stdin: IO[str] | None, from_stdin: bool) -> str:
    """The PIN from one line of stdin, or from a hidden prompt on the terminal."""
    if not from_stdin:
        return getpass.getpass(f"PIN for badge {badge}: ")
    return _one_line(stdin).strip()


def _one_line(stream: IO[str] | None) -> str:
    """One line, read byte by byte from a real file so that later lines stay for the prompts' answers."""
    stream = stream or sys.stdin
    try:
        fd = stream.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return stream.readline()
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data.decode(errors="replace")
