"""The station screen over HTTPS with a certificate of the hub's CA, and plain HTTP only on loopback.

A real `edge run` process serves TLS; a client that trusts the CA signs in and gets a Secure,
HttpOnly, SameSite=Strict cookie; one that does not trust it is refused; headless Chromium loads the
screen over HTTPS trusting exactly the server's key, and refuses it without. Screenshot in
test-artifacts/browser/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from appliance.https import is_loopback
from central_sync.devtools import free_port
from https_kit import (answers, assert_no_plain_http, assert_session_cookie, assert_untrusted, server_certificate,
                       spki_pin, trusting, verified_chain)
from models.testgraphs import write_package
from polling import wait_until
from station_browser import ARGS, ARTIFACTS, CHROMIUM, NO_CHROMIUM, launch, sign_in
from test_daemon import _write_config

ROOT = Path(__file__).resolve().parents[2]
BADGE, PIN = "1A2B3C4D", "1234"


def _edge(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          input=stdin)


def _with_http(config: Path, lines: str) -> Path:
    config.write_text(config.read_text().replace("[http]\n", f"[http]\n{lines}\n"))
    return config


@pytest.fixture
def tls_station(tmp_path):
    """`edge run` serving its screen over HTTPS on 127.0.0.1 with a certificate of the project's CA."""
    ca, cert, key = server_certificate(tmp_path, "xray-test-screen")
    port = free_port()
    config = _with_http(_write_config(tmp_path, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128)),
                        f'cert_file = "{cert}"\nkey_file = "{key}"')
    added = _edge("user", "add", "--config", str(config), "--badge", BADGE, "--name", "Chan", "--role", "officer",
                  stdin=f"{PIN}\n")
    assert added.returncode == 0, added.stderr
    log = (tmp_path / "edge.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"https://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url, ca) or proc.poll() is not None, "the screen answers over HTTPS", timeout=90,
                   interval=0.2)
        assert proc.poll() is None, (tmp_path / "edge.log").read_text()
        yield SimpleNamespace(url=url, port=port, ca=ca, cert=cert)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_a_client_trusting_the_ca_signs_in_and_gets_a_secure_cookie(tls_station):
    with httpx.Client(base_url=tls_station.url, verify=trusting(tls_station.ca), timeout=10) as client:
        refused = client.post("/api/signin", json={"badge": BADGE, "pin": "9999"})
        assert refused.status_code == 401
        response = client.post("/api/signin", json={"badge": BADGE, "pin": PIN})
        assert response.status_code == 200, response.text
        assert_session_cookie(response.headers["set-cookie"])
        assert client.get("/api/me").json()["badge"] == BADGE  # the cookie goes back over HTTPS
    served = verified_chain("127.0.0.1", tls_station.port, tls_station.ca)
    assert served.subject.rfc4514_string() == "CN=xray-test-screen"
    assert_untrusted(f"{tls_station.url}/healthz")
    assert_no_plain_http(tls_station.port)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
def test_chromium_loads_the_screen_over_https_trusting_the_servers_key(tls_station):
    """Chromium cannot be given a CA without a profile's NSS database; it is given the server's key
    (whose chain to the CA the test above verifies) and refuses the page without it."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as pw:
        untrusting = launch(pw)
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            untrusting.new_page().goto(tls_station.url)
        untrusting.close()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=[*ARGS, f"--ignore-certificate-errors-spki-list={spki_pin(tls_station.cert)}"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(15_000)
        sign_in(page, tls_station, (BADGE, PIN))
        assert page.evaluate("location.protocol") == "https:"
        cookie = next(c for c in page.context.cookies() if c["domain"] == "127.0.0.1")
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads the session
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "station_https.png")
        browser.close()


def test_plain_http_on_a_lan_address_is_refused_unless_allowed(tmp_path):
    port = free_port()
    config = _with_http(_write_config(tmp_path, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128)),
                        'host = "0.0.0.0"')
    checked = _edge("check-config", "--skip-files", str(config))
    assert checked.returncode == 78
    assert "http: Value error, plain HTTP on 0.0.0.0 is refused (only loopback may serve without TLS)" in checked.stderr
    run = _edge("run", "--config", str(config))
    assert run.returncode == 78, run.stderr
    assert "plain HTTP on 0.0.0.0 is refused" in run.stderr
    allowed = _with_http(config, "allow_plain_http = true")
    assert _edge("check-config", "--skip-files", str(allowed)).returncode == 0
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(allowed)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: answers(f"http://127.0.0.1:{port}") or proc.poll() is not None, "the lab station serves plain HTTP",
                       timeout=90, interval=0.2)
            assert proc.poll() is None, log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert "http.plain_http_exposed" in log.read_text()


def test_a_certificate_without_its_key_is_a_config_error_and_check_config_reads_both(tmp_path):
    config = _with_http(_write_config(tmp_path, free_port(), tmp_path / "model"), f'cert_file = "{tmp_path}/no.crt"')
    checked = _edge("check-config", "--skip-files", str(config))
    assert "cert_file and key_file go together: give both or neither" in checked.stderr
    both = _with_http(config, f'key_file = "{tmp_path}/no.key"')
    missing = _edge("check-config", str(both))
    assert f"http.cert_file: {tmp_path}/no.crt cannot be read: No such file or directory" in missing.stderr
    assert f"http.key_file: {tmp_path}/no.key cannot be read" in missing.stderr


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                ("::", False), ("10.0.0.5", False), ("gate-1.lan", False)])
def test_only_loopback_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
