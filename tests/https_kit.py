"""HTTPS in tests: a server certificate of the project's own CA, the client checks a user would notice.

    ca, cert, key = server_certificate(tmp_path)          # `edge-hub pki init` + a server certificate for 127.0.0.1
    assert_session_cookie(response.headers["set-cookie"])  # Secure, HttpOnly, SameSite=Strict
    assert_untrusted(url)                                  # a client that does not trust the CA refuses the server
    httpx.get(url, verify=trusting(ca))                    # a client that trusts the CA only
    spki_pin(cert)                                         # for Chromium's --ignore-certificate-errors-spki-list
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_sync.pki import Authority


def server_certificate(tmp: Path, name: str = "screen") -> tuple[Path, Path, Path]:
    """The CA's certificate, a `server` certificate for 127.0.0.1 and localhost, and its key (0600)."""
    ca = Authority(tmp / "pki")
    if not ca.cert_path.exists():
        ca.init()
    key, cert = ca.issue_with_key(name, "server", hosts=["127.0.0.1", "localhost"])
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    return ca.cert_path, cert_path, key_path


def trusting(ca: Path) -> ssl.SSLContext:
    """A client context that trusts the project's CA only (httpx's `verify=`)."""
    return ssl.create_default_context(cafile=str(ca))


def answers(url: str, ca: Path | None = None) -> bool:
    """`url`/healthz answers 200 (over HTTPS trusting `ca` only, when given); False while it cannot be reached."""
    try:
        return httpx.get(f"{url}/healthz", verify=trusting(ca) if ca else True, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def assert_session_cookie(set_cookie: str) -> None:
    """The session cookie is sent over HTTPS only, hidden from scripts and never sent cross-site."""
    attrs = {part.strip().split("=")[0].lower(): part.strip() for part in set_cookie.split(";")}
    assert "secure" in attrs, set_cookie
    assert "httponly" in attrs, set_cookie
    assert attrs.get("samesite", "").lower() == "samesite=strict", set_cookie


def assert_untrusted(url: str) -> None:
    """A client with the system's trust store (not the project's CA) refuses the server's certificate."""
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(url, timeout=10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value), refused.value


def assert_no_plain_http(port: int) -> None:
    """The TLS port does not answer plain HTTP with a page."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    except httpx.HTTPError:
        return
    assert response.status_code == 400 and "ok" not in response.text, response.text


def verified_chain(host: str, port: int, ca: Path) -> x509.Certificate:
    """The server's certificate, after Python's ssl verified its chain to `ca` and its name against `host`."""
    import socket

    context = trusting(ca)
    with socket.create_connection((host, port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def spki_pin(cert: Path | x509.Certificate) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): Chromium trusts exactly this key with --ignore-certificate-errors-spki-list."""
    loaded = cert if isinstance(cert, x509.Certificate) else x509.load_pem_x509_certificate(cert.read_bytes())
    spki = loaded.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
