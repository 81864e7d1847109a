"""Case bundles exported from the hub (both backends), signed with the hub's command key: they verify
offline against its public key, a flipped byte in a scan is named, every export is in the control-room
audit, and an export without a reason or with an unknown record is refused in one sentence."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from central_sync.case_bundle import MANIFEST, load_public_key, read_bundle, verify
from central_sync.commands import generate_keypair
from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
from central_sync.control_room.db import migrate
from central_sync.hub.api import create_app
from central_sync.hub.cli import main
from central_sync.hub.store import HubStore, open_store
from central_sync.schema import Verdict
from history_kit import PLATE, ingest, vehicle_pass


@pytest.fixture(params=["sqlite", "postgresql"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, HubStore]]:
    url = str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    migrate(store)
    yield url, store
    store.close()


def scan(n: int) -> bytes:
    return f"scan file {n}".encode() * 50


def _seed(store: HubStore) -> dict[str, str]:
    recs = {"seized": vehicle_pass(1, Verdict.SUSPECT, 2, scan(1), review="threat_confirmed"),
            "earlier": vehicle_pass(2, Verdict.CLEAR, 30, scan(2)),
            "other": vehicle_pass(3, Verdict.CLEAR, 1, scan(3), plate="AB 1234")}
    ingest(store, list(recs.values()), {hashlib.sha256(scan(n)).hexdigest(): scan(n) for n in (1, 3)})
    audit.append(store, "sup-lee", "record.view", recs["seized"].id, {})
    return {name: r.id for name, r in recs.items()}


def test_hub_export_verifies_against_the_hub_key_and_is_audited(hub: tuple[str, HubStore], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url, store = hub
    ids = _seed(store)
    generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    out = tmp_path / "case.zip"
    assert main(["case", "export", "--db", url, "--signing-key", str(tmp_path / "hub.key"), "--identity",
                 f"plate={PLATE}", "--reason", "court order 55", "--by", "sup-lee", "--out", str(out)]) == 0
    files = read_bundle(out)
    result = verify(files, load_public_key(str(tmp_path / "hub.pub")))
    assert result.ok, result.problems
    m = result.manifest
    assert m is not None and m.side == "hub" and m.records == [ids["earlier"], ids["seized"]]
    assert f"scans/{hashlib.sha256(scan(1)).hexdigest()}.npz" in files
    assert f"record {ids['earlier']}'s scan {hashlib.sha256(scan(2)).hexdigest()} is not held by the hub" in m.notes
    assert json.loads(files[f"reviews/{ids['seized']}.json"])[0]["outcome"] == "threat_confirmed"
    assert [e["action"] for e in json.loads(files[f"audit/{ids['seized']}.json"])] == ["record.view"]
    [entry] = [e for e in audit.entries(store) if e["action"] == "case.export"]
    detail = json.loads(entry["detail"])
    assert (entry["actor"], detail["reason"]) == ("sup-lee", "court order 55")
    assert detail["manifest_sha256"] == hashlib.sha256(files[MANIFEST]).hexdigest()
    assert audit.verify(store)[1] is None

    name = f"scans/{hashlib.sha256(scan(1)).hexdigest()}.npz"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data[:-1] + bytes([data[-1] ^ 1]) if n == name else data)
    capsys.readouterr()
    assert main(["case", "verify", str(bad), "--key", str(tmp_path / "hub.pub")]) == 1
    assert capsys.readouterr().out.strip().startswith(f"REFUSED: file {name} does not match its sha256")


def test_hub_export_refuses_without_a_reason_or_with_an_unknown_record(hub: tuple[str, HubStore], tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url, store = hub
    ids = _seed(store)
    generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    base = ["case", "export", "--db", url, "--signing-key", str(tmp_path / "hub.key"), "--by", "sup-lee"]
    assert main([*base, "--record", ids["seized"], "--reason", " ", "--out", str(tmp_path / "a.zip")]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert main([*base, "--record", "nope", "--reason", "x", "--out", str(tmp_path / "b.zip")]) == 2
    assert capsys.readouterr().err.strip() == "edge-hub case: record nope is not in the hub database"
    assert not [e for e in audit.entries(store) if e["action"] == "case.export"]
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "b.zip").exists()


PASSWORD = "correct horse"


async def test_the_control_room_export_is_for_supervisors_needs_a_reason_and_verifies(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(signing_key=tmp_path / "hub.key")) as room:
        for name, role in (("op1", "operator"), ("sup1", "supervisor")):
            auth.add_user(store, name, role, PASSWORD)
        ids = _seed(store)
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
            body = {"record_ids": [ids["seized"]], "reason": "court order 55"}
            assert (await http.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})).status_code == 200
            assert (await http.post("/cr/api/case-bundles", json=body)).status_code == 403
            assert (await http.post("/cr/api/login", json={"username": "sup1", "password": PASSWORD})).status_code == 200
            empty = await http.post("/cr/api/case-bundles", json={**body, "reason": ""})
            assert (empty.status_code, empty.json()["code"]) == (422, "reason_required")  # translated on the page
            assert not [e for e in audit.entries(store) if e["action"] == "case.export"]
            r = await http.post("/cr/api/case-bundles", json=body)
            assert r.status_code == 200, r.text
            files = read_bundle_bytes(r.content)
    assert verify(files, load_public_key(str(tmp_path / "hub.pub"))).ok
    [entry] = [e for e in audit.entries(store) if e["action"] == "case.export"]
    assert entry["actor"] == "sup1" and json.loads(entry["detail"])["manifest_sha256"] == r.headers["x-manifest-sha256"]
    store.close()


def read_bundle_bytes(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


@pytest.mark.parametrize("value", ["-", ".", "·"])
def test_a_value_of_separators_only_selects_no_other_vehicle(hub: tuple[str, HubStore], value: str) -> None:
    """Normalised, `-` is empty, as is the value of every pass whose plate was not read: the hub's bundle for
    `plate=-` took those unrelated vehicles' records."""
    from central_sync.case_bundle import CaseBundleError, Selection
    from central_sync.hub import case_export

    _, store = hub
    ingest(store, [vehicle_pass(7, Verdict.CLEAR, 1, None, plate="")])
    with pytest.raises(CaseBundleError, match="has no letter or digit in its value, so it names no vehicle"):
        case_export.select(store, Selection(identity_kind="plate", identity_value=value))
