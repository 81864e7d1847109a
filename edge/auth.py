"""Station screen users and sessions: badge + PIN sign-in, roles, expiring sessions.

A badge id alone is cloneable, so it only identifies; the PIN (scrypt-hashed) authenticates.
Repeated wrong PINs lock the badge for the client that typed them (the screen's SignInGuard, in
memory), never for everyone: a stranger must not be able to lock an officer out. An unknown badge
costs the same hash check as a wrong PIN. Session tokens are random; only their sha256 is stored,
so a copy of the database does not hand out live sessions.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from appliance.passwords import check_secret, hash_secret
from edge import audit
from edge.audit import transaction
from edge.errors import EdgeError
from edge.store import Store

ROLES: tuple[str, ...] = ("officer", "supervisor", "technician")
NAME_MAX = 100  # characters of a user's name (`edge user add`)

PERMISSIONS: dict[str, frozenset[str]] = {
    "case.view": frozenset({"officer", "supervisor"}),        # case images, queue, history, records
    "case.decide": frozenset({"officer", "supervisor"}),
    "case.override": frozenset({"supervisor"}),
    "case.export": frozenset({"supervisor"}),
    "tip.stats.all": frozenset({"supervisor"}),
    "audit.view": frozenset({"supervisor"}),
    "belt.restart": frozenset({"supervisor"}),                # run a conveyor belt latched stopped
    "lane.confirm": frozenset({"supervisor", "technician"}),  # end a gantry lane's hold for an unreadable lane file
    "search.report": frozenset({"officer", "supervisor"}),    # sign a vehicle search report (badge + PIN again)
    "search.countersign": frozenset({"supervisor"}),          # countersign a seizure report
    "diagnostics": frozenset({"technician"}),
    "health": frozenset(ROLES),
}


AUTH_DDL = """
CREATE TABLE IF NOT EXISTS web_users (
    badge        TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    pin_hash     TEXT NOT NULL,
    lang         TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    failed       INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_sha256 TEXT PRIMARY KEY,
    badge        TEXT NOT NULL REFERENCES web_users(badge),
    created_at   REAL NOT NULL,
    last_seen    REAL NOT NULL
);
"""


class AuthError(EdgeError):
    """A sign-in or user change that is refused; the message is safe to show."""


@dataclass(frozen=True)
class User:
    badge: str
    name: str
    role: str
    lang: str | None = None

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


@dataclass(frozen=True)
class SessionPolicy:
    max_s: float = 12 * 3600
    idle_s: float = 15 * 60
    max_failed: int = 5
    lockout_s: float = 300


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(AUTH_DDL)


def normalise_badge(badge: str) -> str:
    """Badge ids are hex as the reader sends them; case and surrounding blanks do not matter."""
    value = badge.strip().upper()
    if not re.fullmatch(r"[0-9A-F]{4,32}", value):
        raise AuthError(f"badge id {badge!r} is not 4 to 32 hexadecimal digits")
    return value


def add_user(store: Store, badge: str, name: str, role: str, pin: str, lang: str | None = None) -> User:
    """Create or replace a user (the `edge user add` command); the PIN is 4 to 12 digits."""
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[0-9]{4,12}", pin):
        raise AuthError("a PIN must be 4 to 12 digits")
    if not name.strip():
        raise AuthError("a user needs a name")
    if not name.isprintable() or len(name.strip()) > NAME_MAX:
        # shown on every screen the user signs in to and written in console logs: a newline or an escape sequence
        # forged lines and colours there, and a name of a megabyte was taken
        raise AuthError(f"a user's name is at most {NAME_MAX} printable characters (no newlines, tabs or control"
                        f" characters), got {name[:NAME_MAX + 1]!r}{'...' if len(name) > NAME_MAX + 1 else ''}")
    user = User(normalise_badge(badge), name.strip(), role, lang)
    conn = store.conn
    ensure_schema(conn)
    audit.ensure_schema(conn)
    conn.execute("INSERT OR REPLACE INTO web_users (badge, name, role, pin_hash, lang, created_at)"
                 " VALUES (?,?,?,?,?,?)", (user.badge, user.name, role, hash_secret(pin), lang, time.time()))
    audit.append(conn, "cli", "user.add", user.badge, {"name": user.name, "role": role})  # never the PIN
    return user


def authenticate(conn: sqlite3.Connection, badge: str, pin: str, policy: SessionPolicy | None = None,
                 now: float | None = None) -> User:
    """The user for a badge and PIN, or AuthError (the same message and the same hash work whichever
    part was wrong). Lockouts are the caller's (per client, see edge/web/routes_auth.py); the
    `failed`/`locked_until` columns are no longer used."""
    refused = AuthError("badge or PIN not accepted")
    try:
        badge = normalise_badge(badge)
    except AuthError:
        check_secret(pin, _dummy_hash())
        raise refused from None
    row = conn.execute("SELECT name, role, pin_hash, lang, active FROM web_users WHERE badge = ?", (badge,)).fetchone()
    known = row is not None and bool(row[4])
    if not check_secret(pin, row[2] if known else _dummy_hash()) or not known:
        raise refused
    name, role, _, lang, _ = row
    return User(badge, name, role, lang)


@functools.cache
def _dummy_hash() -> str:
    """Verified against for an unknown badge, so that the refusal takes as long as a wrong PIN."""
    return hash_secret(secrets.token_hex(8))


def set_lang(conn: sqlite3.Connection, badge: str, lang: str) -> None:
    conn.execute("UPDATE web_users SET lang = ? WHERE badge = ?", (lang, badge))


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: sqlite3.Connection, user: User, now: float | None = None) -> str:
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO web_sessions VALUES (?,?,?,?)", (_token_key(token), user.badge, now, now))
    return token


def session_user(conn: sqlite3.Connection, token: str, policy: SessionPolicy,
                 now: float | None = None, touch: bool = True, active_at: float | None = None) -> User | None:
    """The signed-in user of a live session (refreshing its idle timer when `touch`), or None once expired.
    `active_at`: when the user last touched the screen, as the screen says (an officer's screen asks the station by
    itself every few seconds: the idle timer runs from the user's own last act, not from those requests)."""
    now = time.time() if now is None else now
    key = _token_key(token)
    with transaction(conn):
        row = conn.execute(
            "SELECT s.created_at, s.last_seen, u.badge, u.name, u.role, u.lang, u.active FROM web_sessions s"
            " JOIN web_users u ON u.badge = s.badge WHERE s.token_sha256 = ?", (key,)).fetchone()
        if row is None:
            return None
        created, last_seen, badge, name, role, lang, active = row
        acted = now if active_at is None else min(active_at, now)
        if touch and acted - last_seen <= policy.idle_s:  # the user acted while the session was alive
            last_seen = max(last_seen, acted)
        if not active or now - created > policy.max_s or now - last_seen > policy.idle_s:
            conn.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (key,))
            return None
        if touch:
            conn.execute("UPDATE web_sessions SET last_seen = ? WHERE token_sha256 = ?", (last_seen, key))
    return User(badge, name, role, lang)


def close_session(conn: sqlite3.Connection, token: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (_token_key(token),))
