"""Invalid requests answer 422 with the validation errors, whatever the client sent.

FastAPI's own answer to a request that fails validation echoes each offending value; JSON that is valid but
holds a number too large for a float (1e999) arrives as infinity, which JSON cannot carry, and the answer
itself failed with 500. Values JSON cannot carry are echoed as their text instead.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (at any depth) replaced by its text ('inf', '-inf', 'nan')."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def first_non_finite(value: Any, where: str = "") -> str | None:
    """Where the first non-finite number in a decoded JSON value lies (e.g. 'when.all.0.value'), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        if (found := first_non_finite(item, f"{where}.{key}" if where else str(key))) is not None:
            return found
    return None


def answer_invalid_requests(app: FastAPI) -> None:
    """Register the 422 handler on `app`."""
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})


def utc_time(value: datetime) -> datetime:
    """A time from a query as UTC: one without a zone is taken as UTC; one beyond what a timestamp holds is
    refused (a naive 0001-01-01 made `timestamp()` raise: 500 instead of 422)."""
    when = value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
    try:
        when.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"time {value.isoformat()} is out of range") from exc
    return when


QueryTime = Annotated[datetime, AfterValidator(utc_time)]
"""A route's time parameter (since, until): UTC, or 422."""
