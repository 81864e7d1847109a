"""The control room over HTTPS: a real `edge-hub run` with a certificate of its own CA, Secure cookies,
an untrusting client refused, and plain HTTP only on loopback unless allowed (with a warning)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from central_sync.control_room import auth
from central_sync.control_room.db import migrate
from central_sync.hub.store import open_store
from https_kit import (answers, assert_no_plain_http, assert_session_cookie, assert_untrusted, server_certificate,
                       spki_pin, trusting)
from polling import wait_until

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PASSWORD = "op-password-1"


def test_the_control_room_serves_https_and_a_secure_session_cookie(tmp_path, broker, hubs):
    ca, cert, key = server_certificate(tmp_path, "hub-web")
    db = str(tmp_path / "hub.sqlite3")
    store = open_store(db)
    migrate(store)
    auth.add_user(store, "op1", "operator", PASSWORD)
    store.close()
    hub = hubs(db, broker.port, "hub-tls", http=True, extra=("--https-cert", str(cert), "--https-key", str(key)))
    url = f"https://127.0.0.1:{hub.http_port}"
    wait_until(lambda: answers(url, ca) or hub.proc.poll() is not None, "the control room answers over HTTPS",
               timeout=60, interval=0.2)
    assert hub.proc.poll() is None, hub.log.read_text()
    with httpx.Client(base_url=url, verify=trusting(ca), timeout=10) as client:
        assert client.post("/cr/api/login", json={"username": "op1", "password": "wrong-password"}).status_code == 401
        response = client.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert_session_cookie(response.headers["set-cookie"])
        assert client.get("/api/stations").status_code == 200  # the cookie signs the next request in
    assert_untrusted(f"{url}/healthz")
    assert_no_plain_http(hub.http_port)
    if CHROMIUM.exists():  # the chain is verified above; Chromium is given the server's key
        _browser_signs_in(url, cert)


def _browser_signs_in(url: str, cert: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, f"--ignore-certificate-errors-spki-list={spki_pin(cert)}"])
        page = browser.new_page()
        page.goto(f"{url}/")
        page.fill("input[name=username]", "op1")
        page.fill("input[name=password]", PASSWORD)
        page.click("#signin-form button[type=submit]")
        expect(page.locator("#nav")).to_be_visible()  # signed in
        cookie = next(c for c in page.context.cookies() if c["domain"] == "127.0.0.1")
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
        browser.close()


def _hub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "central_sync.hub.cli", "run", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_plain_http_on_a_lan_address_is_refused_and_allowed_only_with_a_warning(tmp_path, broker, hubs):
    refused = _hub("--db", str(tmp_path / "h.sqlite3"), "--http-host", "0.0.0.0", "--http-port", "18080")
    assert refused.returncode == 78
    assert refused.stderr.strip() == ("edge-hub: plain HTTP on 0.0.0.0 is refused (only loopback may serve without "
                                      "TLS): give a certificate and key, or allow plain HTTP explicitly for a lab "
                                      "(--https-cert and --https-key, or --allow-plain-http)")
    half = _hub("--db", str(tmp_path / "h.sqlite3"), "--https-cert", str(tmp_path / "a.crt"))
    assert half.returncode == 78 and "--https-cert and --https-key go together" in half.stderr
    # a file an option names that cannot be read, or a pair that does not load: one line, 78 (a traceback, exit 1,
    # restarted every 5 s before)
    missing = _hub("--db", str(tmp_path / "h.sqlite3"), "--tls-ca", str(tmp_path / "nope" / "ca.crt"))
    assert (missing.returncode, missing.stderr.strip()) == (
        78, f"edge-hub: --tls-ca {tmp_path / 'nope' / 'ca.crt'} cannot be read: No such file or directory")
    (tmp_path / "bad.crt").write_text("not a certificate")
    (tmp_path / "bad.key").write_text("not a key")
    garbage = _hub("--db", str(tmp_path / "h.sqlite3"), "--https-cert", str(tmp_path / "bad.crt"),
                   "--https-key", str(tmp_path / "bad.key"))
    assert garbage.returncode == 78 and "do not load together" in garbage.stderr and "Traceback" not in garbage.stderr
    lab = hubs(str(tmp_path / "hub.sqlite3"), broker.port, "hub-lab", http=True,
               extra=("--http-host", "0.0.0.0", "--allow-plain-http"))
    wait_until(lambda: answers(f"http://127.0.0.1:{lab.http_port}") or lab.proc.poll() is not None, "the lab hub serves plain HTTP",
               timeout=60, interval=0.2)
    assert lab.proc.poll() is None, lab.log.read_text()
    assert "http.plain_http_exposed" in lab.log.read_text()



def test_a_station_requests_its_screen_certificate_and_the_hub_signs_it_for_its_addresses(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=60)

    pki = ("-m", "central_sync.hub.cli", "pki", "--dir", str(tmp_path / "ca"))
    assert cli(*pki, "init").returncode == 0
    made = cli("-m", "edge.cli", "pki", "csr", "gate-1-web", "--key", str(tmp_path / "web.key"), "--out", str(tmp_path / "web.csr"))
    assert made.returncode == 0, made.stderr
    nameless = cli(*pki, "issue", "gate-1-web", "--csr", str(tmp_path / "web.csr"), "--kind", "server")
    assert nameless.returncode == 1
    assert nameless.stderr.strip() == ("edge-hub: a server certificate for 'gate-1-web' needs its host names or "
                                       "addresses (--host)")
    issued = cli(*pki, "issue", "gate-1-web", "--csr", str(tmp_path / "web.csr"), "--kind", "server",
                 "--host", "10.20.1.5", "--host", "gate-1.lan", "--out", str(tmp_path / "web.crt"))
    assert issued.returncode == 0, issued.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "web.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.20.1.5"]
    assert names.get_values_for_type(x509.DNSName) == ["gate-1.lan"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
