"""HTTPS for the station screen and the control room: a certificate, or plain HTTP on loopback only.

Both web servers serve TLS when given a certificate and its key (one of the hub's CA, `edge-hub pki
issue NAME --kind server --host ...`, or a site's own). Without one they serve plain HTTP, which is
refused on any address but loopback unless the operator says so explicitly (a lab), and then
logged as a warning at every start: session cookies and PINs would cross the network in clear.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("appliance.https")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; false for any other name and for 0.0.0.0 / :: (every address)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_problem(host: str, tls: bool, allow_plain: bool) -> str | None:
    """Why serving on `host` is refused (one sentence), or None: TLS, loopback, or plain HTTP allowed."""
    if tls or allow_plain or is_loopback(host):
        return None
    return (f"plain HTTP on {host} is refused (only loopback may serve without TLS): give a certificate and key, "
            f"or allow plain HTTP explicitly for a lab")


def warn_plain_http(host: str, port: int, what: str, tls: bool) -> None:
    """The loud warning of a plain-HTTP server reachable from the network (allowed explicitly)."""
    if not tls and not is_loopback(host):
        log.warning("http.plain_http_exposed", server=what, host=host, port=port,
                    risk="session cookies, PINs and passwords cross the network unencrypted",
                    fix="serve it with a certificate (docs/deployment.md, HTTPS)")


def uvicorn_tls(cert_file: Path | None, key_file: Path | None) -> dict[str, Any]:
    """uvicorn.Config keyword arguments serving TLS 1.2+ with this certificate (chain) and key; {} for none."""
    if cert_file is None:
        return {}
    return {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file) if key_file else None}
