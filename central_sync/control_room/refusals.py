"""A control-room request refused with a stable code: the page says it in the reader's language.

The answer's body is `{"detail": <the English sentence with the values>, "code": <code>, "vals": {...}}`: the
sentence is for the API's users, the audit and the log; the page shows `error.<code>` from the catalogue with
`vals` (static/app.js, api()), so a refusal reads in the reader's language, not in English.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from central_sync.errors import SyncError


class Refused(SyncError, HTTPException):
    """A request the control room will not carry out: the HTTP status, a code (`error.<code>` in the catalogue),
    one English sentence with the values (`detail`) and those values (`vals`) for the translation."""

    def __init__(self, status: int, code: str, message: str, **vals: Any) -> None:
        HTTPException.__init__(self, status, message)
        self.code, self.vals = code, {k: str(v) for k, v in vals.items()}


async def answer(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler of Refused: its sentence, code and values."""
    assert isinstance(exc, Refused)
    return JSONResponse({"detail": exc.detail, "code": exc.code, "vals": exc.vals}, exc.status_code, exc.headers)


def forbidden(role: str, permission: str) -> Refused:
    """403 for a role that lacks `permission`; the page names the role in the language shown (error.forbidden)."""
    return Refused(403, "forbidden", f"the role {role} lacks the permission {permission!r}; nothing was done",
                   role=role, need=permission)
