"""Who may read the hub's /api: machines with a service token, people with a control-room session.

Service tokens are random (`edge-hub api-token NAME` makes one); the hub keeps only their sha256,
one `NAME SHA256` line each in the file given by `edge-hub run --api-tokens FILE` (`#` comments).
A client presents its token as `Authorization: Bearer TOKEN`. A signed-in control-room user (the
`cr_session` cookie, checked by the control room when it is installed on the same app) may read
the API too. Without either a request is answered 401; with no token file and no control room
nobody can read it (closed by default).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request

from central_sync.errors import SyncError

LINE = re.compile(r"^([A-Za-z0-9_.@-]{1,64})\s+([0-9a-f]{64})$")


class TokenFileError(SyncError):
    """The service token file cannot be read or has a malformed line."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str) -> tuple[str, str]:
    """(token to hand to the client, `NAME SHA256` line to add to the hub's token file)."""
    if not LINE.match(f"{name} {'0' * 64}"):
        raise TokenFileError(f"token name {name!r} must be 1 to 64 letters, digits or _.@-")
    token = secrets.token_urlsafe(32)
    return token, f"{name} {token_hash(token)}"


@dataclass(frozen=True)
class ServiceTokens:
    """Names by token sha256; `who(token)` compares in constant time."""

    by_hash: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "ServiceTokens":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise TokenFileError(f"the API token file {path} cannot be read: {exc.strerror}") from exc
        by_hash = {}
        for n, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not (m := LINE.match(line)):
                raise TokenFileError(f"line {n} of the API token file {path} is not `NAME SHA256-HEX`")
            by_hash[m.group(2)] = m.group(1)
        return cls(by_hash)

    def who(self, token: str) -> str | None:
        digest = token_hash(token)
        found = None
        for known, name in self.by_hash.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found


SessionCheck = Callable[[Request], str | None]


def require_reader(request: Request) -> str:
    """FastAPI dependency: the caller's name (`token:NAME` or `user:NAME`), else 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        name = request.app.state.service_tokens.who(token.strip())
        if name is not None:
            return f"token:{name}"
        raise HTTPException(401, "the bearer token is not a known service token",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    check: SessionCheck | None = getattr(request.app.state, "session_check", None)
    user = check(request) if check is not None else None
    if user is None:
        raise HTTPException(401, "sign in to the control room or present a service token (Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})
    return f"user:{user}"
