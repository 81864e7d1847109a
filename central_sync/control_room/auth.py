"""Control-room users and sessions: username + password (scrypt), roles, expiring sessions.

Roles and what they may do are one table (PERMISSIONS); the session token is random, only its
sha256 is stored, and a session ends after `session_idle_s` without use or `session_max_s` in all.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass

from appliance.passwords import check_secret, hash_secret
from appliance.signin_guard import SignInGuard
from central_sync.control_room.config import ControlRoomConfig
from central_sync.control_room.db import execute, transact
from central_sync.errors import SyncError
from central_sync.hub.store import Cursor, HubStore

ROLES: tuple[str, ...] = ("operator", "supervisor", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "act": frozenset(ROLES),               # acknowledge, comment, escalate
    "assign": frozenset({"supervisor", "admin"}),
    "kpi": frozenset({"supervisor", "admin"}),
    "tip_kpi": frozenset(ROLES),               # TIP figures per station
    "staff_kpi": frozenset({"supervisor", "admin"}),  # per-officer figures (staff performance)
    "command": frozenset({"supervisor", "admin"}),
    "switch_model": frozenset({"admin"}),
    "audit": frozenset({"supervisor", "admin"}),
    "case_export": frozenset({"supervisor", "admin"}),  # signed case bundles (docs/case-bundles.md)
    "users": frozenset({"admin"}),
    # retention and legal holds (docs/retention-and-holds.md): admins set the policy, supervisors hold and release
    "retention_view": frozenset({"supervisor", "admin"}),
    "retention_policy": frozenset({"admin"}),
    "hold": frozenset({"supervisor", "admin"}),
    # risk assessment (issue 18): supervisors draft, admins approve and publish (four eyes: never their own draft)
    "risk_view": frozenset({"supervisor", "admin"}),
    "risk_draft": frozenset({"supervisor", "admin"}),
    "risk_import": frozenset({"supervisor", "admin"}),
    "risk_approve": frozenset({"admin"}),
    "risk_publish": frozenset({"admin"}),
    # model roll-out (docs/model-rollout.md): supervisors watch the canaries, admins stage roll-outs
    "models_view": frozenset({"supervisor", "admin"}),
    "models_rollout": frozenset({"admin"}),
}


class AccountError(SyncError):
    """A control-room sign-in refused, or an account that cannot be created; the message one sentence with the values,
    `code` and `vals` the same for a translation (the control room's error.user.<code>)."""

    def __init__(self, message: str, code: str = "refused", **vals: object) -> None:
        super().__init__(message)
        self.code, self.vals = code, vals


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    lang: str | None

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def add_user(store: HubStore, username: str, role: str, password: str, lang: str | None = None) -> User:
    """Create or replace a user (administrators do this through the CLI or the users API)."""
    return put_user(store, username, role, password, lang)[0]


def put_user(store: HubStore, username: str, role: str, password: str, lang: str | None = None,
             replace: bool = True) -> tuple[User, bool]:
    """Create a user, or with `replace` replace one (its role, password and language; active again): the user and
    whether it existed. Replacing ends the account's sessions (a password reset must shut out whoever held the old
    one). AccountError for a bad role or password, or an existing user without `replace`."""
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}", "bad_role", role=role,
                           allowed=", ".join(ROLES))
    if len(password) < 8:
        raise AccountError(f"password for {username!r} has {len(password)} characters, at least 8 are needed",
                           "short_password", user=username, length=len(password), min=8)
    pw_hash = hash_secret(password)

    def put(cur: Cursor) -> bool:
        cur.execute(store.sql("SELECT 1 FROM cr_users WHERE username=?"), (username,))
        existed = bool(cur.fetchall())
        if existed and not replace:
            raise AccountError(f"user {username!r} exists; replacing it (role, password) must be asked for", "exists",
                               user=username)
        cur.execute(store.sql("INSERT INTO cr_users (username, role, pw_hash, lang, active, created_at)"
                              " VALUES (?,?,?,?,1,?) ON CONFLICT (username) DO UPDATE SET role=excluded.role,"
                              " pw_hash=excluded.pw_hash, lang=excluded.lang, active=1"),
                    (username, role, pw_hash, lang, time.time()))
        if existed:
            cur.execute(store.sql("DELETE FROM cr_sessions WHERE username=?"), (username,))
        return existed
    return User(username, role, lang), transact(store, put)


def authenticate(store: HubStore, username: str, password: str) -> User:
    """The user, or AccountError; an unknown or inactive account costs the same hash check as a known one."""
    rows = execute(store, "SELECT role, pw_hash, lang, active FROM cr_users WHERE username=?", (username,))
    known = bool(rows and rows[0][3])
    matches = check_secret(password, rows[0][1] if known else _dummy_hash())
    if not (known and matches):
        raise AccountError(f"sign-in of {username!r} refused: unknown user, inactive or wrong password",
                           "signin_refused", user=username)
    return User(username, rows[0][0], rows[0][2])


def set_lang(store: HubStore, username: str, lang: str) -> None:
    execute(store, "UPDATE cr_users SET lang=? WHERE username=?", (lang, username))


def open_session(store: HubStore, user: User, now: float | None = None) -> str:
    token = secrets.token_urlsafe(32)
    now = time.time() if now is None else now
    execute(store, "INSERT INTO cr_sessions (token_hash, username, created_at, last_seen) VALUES (?,?,?,?)",
            (_key(token), user.username, now, now))
    return token


def session_user(store: HubStore, token: str, cfg: ControlRoomConfig, now: float | None = None) -> User | None:
    """The signed-in user, or None when the session is unknown or expired (expired ones are removed)."""
    now = time.time() if now is None else now
    rows = execute(store, "SELECT s.created_at, s.last_seen, u.username, u.role, u.lang, u.active FROM cr_sessions s"
                          " JOIN cr_users u ON u.username = s.username WHERE s.token_hash=?", (_key(token),))
    if not rows:
        return None
    created, last, username, role, lang, active = rows[0]
    if not active or now - last > cfg.session_idle_s or now - created > cfg.session_max_s:
        close_session(store, token)
        return None
    if now - last > 5:
        execute(store, "UPDATE cr_sessions SET last_seen=? WHERE token_hash=?", (now, _key(token)))
    return User(username, role, lang)


def close_session(store: HubStore, token: str) -> None:
    execute(store, "DELETE FROM cr_sessions WHERE token_hash=?", (_key(token),))


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the account is unknown or inactive, so that the refusal
    costs the same scrypt work as a wrong password and the time does not tell which it was."""
    return hash_secret(secrets.token_urlsafe(16))


def sign_in_guard(cfg: ControlRoomConfig) -> SignInGuard:
    return SignInGuard(cfg.signin_window_s, cfg.signin_client_max, cfg.signin_pair_max, cfg.signin_lockout_s,
                       cfg.signin_account_max)
