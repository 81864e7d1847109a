"""Signed case bundles from a real station store: export -> verify holds; one flipped byte, a missing or
extra file, a changed manifest or another key is refused with a sentence naming it; every export is audited;
the screen's route is for supervisors and needs a reason; `edge case` and `edge-hub case verify` agree."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from central_sync import case_bundle
from central_sync.case_bundle import MANIFEST, read_bundle, verify, zip_bytes
from central_sync.hub.cli import main as hub_main
from central_sync.schema import Identity, InspectionRecord, Review, ScanRef
from edge import audit, case_export, tip
from edge.case_export import CaseExportRefused, Selection, export, parse_identity
from edge.cli import main as edge_main
from edge.context import StationContext
from edge.diag import signing
from edge.events import EventBus
from edge.search_report import add_photo, sign
from edge.store import Store, StoreWriter
from edge.web.app import create_app
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import synthetic_scan
from search_report_kit import HK_PLATE, OFFICER, SUPERVISOR, form, open_station, photo, vehicle_record

PNG = b"\x89PNG\r\n\x1a\n" + b"crop-of-the-rear-plate"
JPEG, OTHER_JPEG = photo(".jpg"), photo(".jpg", seed=1)  # of the spare wheel, of another car


@dataclass
class Case:
    store: Store
    suspect: InspectionRecord  # scan, crop, review, search report with a photo, TIP, audit entries
    again: InspectionRecord  # the same plate, no scan kept
    other: InspectionRecord  # another vehicle


def _vehicle(store: Store, rng: np.random.Generator, plate: str, with_scan: bool) -> InspectionRecord:
    scan, _ = synthetic_scan(rng, threat=True, shape=(120, 200))
    crop = hashlib.sha256(PNG + plate.encode()).hexdigest()
    assert store.put_crop(crop, PNG + plate.encode())
    base = vehicle_record(store.station, plate)
    idents = [i.model_copy(update={"crop": crop}) if i.value == plate else i for i in base.identities]
    ref = ScanRef(sha256=scan.sha256(), size=len(scan.to_bytes()), shape=scan.shape) if with_scan else None
    record = base.model_copy(update={"identities": idents, "scan": ref})
    stored = store.put_scan(scan.sha256(), scan.to_bytes()) if with_scan else False
    return store.commit(record, stored)


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    station = open_station(tmp_path / "data")
    store, rng = station.store, np.random.default_rng(5)
    suspect = _vehicle(store, rng, HK_PLATE, with_scan=True)
    again = _vehicle(store, rng, HK_PLATE, with_scan=False)
    other = _vehicle(store, rng, "XY 9876", with_scan=True)
    store.add_review(suspect.id, Review(officer=OFFICER[0], decided_at=suspect.decided_at, outcome="threat_confirmed",
                                        label="cigarettes", note="sent to search"))
    photo = add_photo(store, JPEG, "image/jpeg")
    sign(store, suspect.id, form(photos=[photo]))
    audit.append(store.conn, OFFICER[0], "case.image_view", suspect.id, {"mode": "colour"})
    tip.ensure_schema(store.conn)
    store.conn.execute("INSERT INTO tip_events (at, officer, record_id, threat, label, params, outcome) "
                       "VALUES (1.0, ?, ?, 'pistol-1', 'firearm', '{}', 'hit')", (OFFICER[0], suspect.id))
    suspect = store.get(suspect.id) or suspect
    yield Case(store, suspect, again, other)
    store.close()


def _bundle(case: Case, tmp_path: Path, selection: Selection | None = None) -> Path:
    bundle = export(case.store, selection or Selection((case.suspect.id,)), SUPERVISOR[0], "seizure 2026/117")
    out = tmp_path / "case.zip"
    out.write_bytes(zip_bytes(bundle))
    return out


def _station_key(case: Case) -> str:
    public = signing.pinned_public(case.store.data_dir)
    assert public is not None
    return public


def test_the_bundle_holds_every_piece_of_evidence_and_verifies(case: Case, tmp_path: Path) -> None:
    files = read_bundle(_bundle(case, tmp_path))
    s = case.suspect
    assert s.scan is not None and s.search_reports
    crop = next(i.crop for i in s.identities if i.crop)
    expected = {f"records/{s.id}.json", f"reviews/{s.id}.json", f"scans/{s.scan.sha256}.npz",
                f"search-reports/{s.id}-v1.json", f"photos/{s.search_reports[0].photos[0]}", f"crops/{crop}.png",
                f"audit/{s.id}.json", f"tip/{s.id}.json", MANIFEST, case_bundle.SIGNATURE}
    assert expected <= set(files)
    assert {n for n in files if n.startswith("dicos/")} == {f"dicos/{s.id}-{k}.dcm" for k in
                                                           ("dx-high", "dx-low", "tdr-machine", "tdr-operator")}
    actions = [e["action"] for e in json.loads(files[f"audit/{s.id}.json"])]
    assert actions[:2] == ["search.report_signed", "case.image_view"]
    assert json.loads(files[f"tip/{s.id}.json"])[0]["outcome"] == "hit"
    result = verify(files, case_bundle.load_public_key(_station_key(case)))
    assert result.ok, result.problems
    m = result.manifest
    assert m is not None and (m.exported_by, m.reason, m.records, m.side) == (SUPERVISOR[0], "seizure 2026/117",
                                                                              [s.id], "station")
    assert m.key.key_id == signing.key_id(_station_key(case))
    assert {e.path for e in m.files} == set(files) - {MANIFEST, case_bundle.SIGNATURE}


def test_the_audit_file_holds_who_added_each_search_photo(case: Case, tmp_path: Path) -> None:
    """The screen audits a search photo when it is taken or uploaded (`search.photo_added`, object the photo's
    sha256), before any report names it: the bundle's audit file, chosen by the record id alone, left out who
    added the case's photos; another record's photo stays out."""
    photo = case.suspect.search_reports[0].photos[0]
    audit.append(case.store.conn, OFFICER[0], "search.photo_added", photo, {"bytes": len(JPEG), "camera": "bay-1"})
    elsewhere = add_photo(case.store, OTHER_JPEG, "image/jpeg")
    audit.append(case.store.conn, OFFICER[0], "search.photo_added", elsewhere, {"bytes": 10, "type": "image/jpeg"})
    audit.append(case.store.conn, OFFICER[0], "case.image_view", case.suspect.id, {"mode": "grey"})
    files = read_bundle(_bundle(case, tmp_path))
    entries = json.loads(files[f"audit/{case.suspect.id}.json"])
    assert [(e["action"], e["object"]) for e in entries][-3:] == [
        ("case.image_view", case.suspect.id), ("search.photo_added", photo), ("case.image_view", case.suspect.id)]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert elsewhere not in files[f"audit/{case.suspect.id}.json"].decode()


def test_a_vehicle_identity_selects_every_record_of_that_plate_and_notes_what_is_gone(case: Case, tmp_path: Path) -> None:
    files = read_bundle(_bundle(case, tmp_path, parse_identity(f"plate={HK_PLATE.lower().replace(' ', '')}")))
    result = verify(files)
    assert result.ok and result.manifest is not None
    assert result.manifest.records == [case.suspect.id, case.again.id]
    assert result.manifest.selection == {"by": "identity", "kind": "plate", "value": "ab1234"}
    assert f"records/{case.other.id}.json" not in files
    assert result.manifest.notes == []  # the second pass never had a scan: nothing missing, nothing to note


def test_a_pruned_scan_is_named_in_the_notes(case: Case, tmp_path: Path) -> None:
    assert case.other.scan is not None
    case.store.scan_path(case.other.scan.sha256).unlink()
    result = verify(read_bundle(_bundle(case, tmp_path, Selection((case.other.id,)))))
    assert result.ok and result.manifest is not None
    assert result.manifest.notes == [f"record {case.other.id}'s scan {case.other.scan.sha256} is no longer kept "
                                     "at the station"]


def test_a_file_the_station_cannot_read_is_named_in_the_notes(case: Case, tmp_path: Path) -> None:
    """A crop the disk cannot give back (EIO; here a directory stands in its place) ended the whole export in an
    OSError: the screen answered 500 and nothing said which piece of evidence was at fault."""
    crop = next(i.crop for i in case.other.identities if i.crop)
    path = case.store.crop_path(crop)
    path.unlink()
    path.mkdir()
    result = verify(read_bundle(_bundle(case, tmp_path, Selection((case.other.id,)))))
    assert result.ok and result.manifest is not None
    [note] = result.manifest.notes
    assert note.startswith(f"identity crop {crop} (plate XY 9876) could not be read at the station (")
    assert note.endswith("): left out of the bundle")


def test_a_file_on_disk_that_is_not_what_the_record_names_is_left_out_with_a_note(case: Case, tmp_path: Path) -> None:
    """Files are named by their sha256: one damaged or replaced on disk (another valid scan, bit rot) was signed
    as the record's scan, and its DICOS images made from it; a replaced photo likewise."""
    s, other = case.suspect, case.other
    assert s.scan is not None and other.scan is not None
    shutil.copyfile(case.store.scan_path(other.scan.sha256), case.store.scan_path(s.scan.sha256))
    photo = s.search_reports[0].photos[0]
    case.store.photo_path(photo).write_bytes(JPEG + b" retouched")
    files = read_bundle(_bundle(case, tmp_path))
    result = verify(files, case_bundle.load_public_key(_station_key(case)))
    assert result.ok and result.manifest is not None
    assert f"scans/{s.scan.sha256}.npz" not in files and f"photos/{photo}" not in files
    assert not [n for n in files if n.startswith("dicos/")]
    notes = result.manifest.notes
    assert any(f"scan {s.scan.sha256} on disk is not that file (it hashes to {other.scan.sha256})" in n for n in notes)
    assert any(f"search photo {photo}" in n and "on disk is not that file" in n for n in notes)
    from edge import dicos
    with pytest.raises(dicos.DicosExportError, match="is not the scan the record names"):
        dicos.stored_dicos_files(case.store, s.id)


def _rewrite(path: Path, change: Callable[[dict[str, bytes]], object]) -> Path:
    files = read_bundle(path)
    change(files)
    out = path.with_name("tampered.zip")
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out


def _flip(files: dict[str, bytes], name: str) -> None:
    data = bytearray(files[name])
    data[len(data) // 2] ^= 0x01
    files[name] = bytes(data)


def test_one_flipped_byte_in_a_scan_names_that_file(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert case.suspect.scan is not None
    name = f"scans/{case.suspect.scan.sha256}.npz"
    bad = _rewrite(_bundle(case, tmp_path), lambda f: _flip(f, name))
    capsys.readouterr()
    assert hub_main(["case", "verify", str(bad), "--key", _station_key(case)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"REFUSED: file {name} does not match its sha256 in the manifest "
                   f"({case.suspect.scan.size} bytes, {case.suspect.scan.size} listed): it was changed after export"]


@pytest.mark.parametrize("tamper, expected", [
    (lambda f, s: f.pop(f"reviews/{s}.json"), "file reviews/{s}.json is listed in the manifest but missing from the bundle"),
    (lambda f, s: f.update({"notes/extra.txt": b"planted"}), "file notes/extra.txt is in the bundle but not in the manifest"),
    (lambda f, s: f.update({MANIFEST: f[MANIFEST].replace(b"seizure 2026/117", b"seizure 2026/118")}),
     "manifest.sig does not verify manifest.json against key id {k}: the manifest was changed after signing or was "
     "signed by another key"),
    (lambda f, s: f.pop(MANIFEST), "the bundle has no manifest.json, so nothing in it can be checked"),
    (lambda f, s: f.pop(case_bundle.SIGNATURE), "the bundle has no manifest.sig, so nobody vouches for manifest.json"),
])
def test_a_missing_extra_or_changed_file_is_refused_with_its_reason(
        case: Case, tmp_path: Path, tamper: Callable[[dict[str, bytes], str], object], expected: str) -> None:
    bad = _rewrite(_bundle(case, tmp_path), lambda f: tamper(f, case.suspect.id))
    result = verify(read_bundle(bad), case_bundle.load_public_key(_station_key(case)))
    assert result.problems == [expected.format(s=case.suspect.id, k=signing.key_id(_station_key(case)))]


def test_a_bundle_re_signed_with_another_key_is_refused_against_the_pinned_key(case: Case, tmp_path: Path) -> None:
    files = read_bundle(_bundle(case, tmp_path))
    forged = Ed25519PrivateKey.generate()
    manifest = case_bundle.Manifest.model_validate_json(files[MANIFEST])
    evidence = {n: d for n, d in files.items() if n not in (MANIFEST, case_bundle.SIGNATURE)}
    _flip(evidence, f"records/{case.suspect.id}.json")
    again = case_bundle.build(evidence, forged, **manifest.model_dump(exclude={"files", "key"}))
    assert verify(again.files).ok  # consistent in itself: only the pinned key tells the forgery
    result = verify(again.files, case_bundle.load_public_key(_station_key(case)))
    forged_id, station_id = again.manifest.key.key_id, signing.key_id(_station_key(case))
    assert result.problems == [
        f"manifest.json names signing key id {forged_id} but the key given is key id {station_id}",
        f"manifest.sig does not verify manifest.json against key id {station_id}: the manifest was changed after "
        "signing or was signed by another key"]


def test_every_export_is_audited_with_the_manifest_hash(case: Case, tmp_path: Path) -> None:
    bundle = export(case.store, Selection((case.suspect.id, case.again.id)), SUPERVISOR[0], "court order 55")
    [entry] = [e for e in audit.entries(case.store.conn) if e.action == "case.export"]
    detail = json.loads(entry.detail)
    assert (entry.actor, entry.object) == (SUPERVISOR[0], f"case:{bundle.manifest.case_id}")
    assert detail["manifest_sha256"] == hashlib.sha256(bundle.files[MANIFEST]).hexdigest()
    assert (detail["reason"], detail["records"]) == ("court order 55", [case.suspect.id, case.again.id])
    assert audit.verify_conn(case.store.conn) == (True, None)


@pytest.mark.parametrize("selection, reason, code", [
    (Selection(("nope",)), "court order", "unknown_record"),
    (Selection(identity_kind="plate", identity_value="ZZ 0000"), "court order", "no_records"),
    (Selection(("x",)), "   ", "reason_required"),
])
def test_refused_exports_say_why_and_are_not_audited(case: Case, selection: Selection, reason: str, code: str) -> None:
    with pytest.raises(CaseExportRefused) as refused:
        export(case.store, selection, SUPERVISOR[0], reason)
    assert refused.value.code == code
    assert not [e for e in audit.entries(case.store.conn) if e.action == "case.export"]


def test_parse_identity_refuses_an_unknown_kind() -> None:
    with pytest.raises(CaseExportRefused, match="is not KIND=VALUE"):
        parse_identity("colour=red")
    assert parse_identity("container=CSQU3054383") == Selection(identity_kind="container", identity_value="CSQU3054383")


@pytest.mark.parametrize("value", ["-", ".", "·", " - "])
def test_a_value_of_separators_only_selects_no_other_vehicle(case: Case, value: str) -> None:
    """Compared as the history compares it, `-` is empty, as is the value of every pass whose plate the camera
    could not read: the export for `plate=-` took those unrelated vehicles' records."""
    unread = vehicle_record(case.store.station).model_copy(update={"identities": [
        Identity(kind="plate", value="", raw="?B 12?4", source="cam-front", status="unread")]})
    case.store.commit(unread, False)
    with pytest.raises(CaseExportRefused, match="has no letter or digit") as refused:
        parse_identity(f"plate={value}")
    assert refused.value.code == "bad_identity"
    with pytest.raises(CaseExportRefused) as none:  # a selection made without parse_identity matches nothing either
        export(case.store, Selection(identity_kind="plate", identity_value=value), SUPERVISOR[0], "court order 9")
    assert none.value.code == "no_records"


def test_the_command_lines_export_and_verify_offline(case: Case, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nid = "gantry-1"\nkind = "xray"\nitem_kind = "baggage"\nbudget_ms = 500\n'
                      f'data_dir = "{case.store.data_dir}"\n\n[devices.source]\nkind = "filedrop"\n'
                      f'folder = "{tmp_path / "drop"}"\n')
    out = tmp_path / "cli-case.zip"
    args = ["case", "export", "--config", str(config), "--identity", f"plate={HK_PLATE}", "--by", "sup-lee",
            "--out", str(out)]
    assert edge_main([*args, "--reason", "seizure 2026/117"]) == 0
    assert "2 records" in capsys.readouterr().out
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(out, unpacked)
    key = tmp_path / "station.pub"
    key.write_text(_station_key(case) + "\n")
    assert edge_main(["case", "verify", str(unpacked), "--key", str(key)]) == 0
    assert hub_main(["case", "verify", str(out)]) == 0
    lines = _said(capsys)
    assert lines[0].startswith("VERIFIED: case ") and "checked against the key given" in lines[1]
    assert "pass --key to pin it" in lines[3]
    (unpacked / "extra.txt").write_text("x")
    assert edge_main(["case", "verify", str(unpacked)]) == 1
    assert _said(capsys) == ["REFUSED: file extra.txt is in the bundle but not in the manifest"]
    assert edge_main([*args[:-1], str(tmp_path / "again.zip"), "--reason", ""]) == 2
    assert "needs a reason" in capsys.readouterr().err


def _said(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `case verify` printed (log lines of the export before it left out)."""
    return [line for line in capsys.readouterr().out.splitlines()
            if line.startswith(("VERIFIED", "REFUSED", "signed by", "note:"))]


@pytest.fixture
def screen(case: Case) -> Iterator[Callable[[tuple[str, str, str, str]], TestClient]]:
    """The station screen on the case's store, with the kit's officer and supervisor."""
    writer = StoreWriter(Store(case.store.data_dir, station="gantry-1"))
    ctx = StationContext("gantry-1", "xray", "1", 400.0, writer, EventBus(), lambda: {})
    app = create_app(ctx, WebConfig(tip=TipConfig(enabled=False)))
    with contextlib.ExitStack() as stack:
        def client(who: tuple[str, str, str, str]) -> TestClient:
            c = stack.enter_context(TestClient(app))
            assert c.post("/api/signin", json={"badge": who[0], "pin": who[3]}).status_code == 200
            return c
        yield client
    asyncio.run(writer.__aexit__(None, None, None))


def test_the_screen_export_is_for_supervisors_needs_a_reason_and_verifies(
        case: Case, screen: Callable[[tuple[str, str, str, str]], TestClient]) -> None:
    body = {"record_ids": [case.suspect.id], "reason": "seizure 2026/117"}
    assert screen(OFFICER).post("/api/case-bundles", json=body).status_code == 403
    sup = screen(SUPERVISOR)
    empty = sup.post("/api/case-bundles", json={**body, "reason": " "})
    assert (empty.status_code, empty.json()["detail"]) == (422, "reason_required")
    both = sup.post("/api/case-bundles", json={**body, "identity": f"plate={HK_PLATE}"})
    assert (both.status_code, both.json()["detail"]) == (422, "bad_selection")
    assert not [e for e in audit.entries(case.store.conn) if e.action == "case.export"]
    r = sup.post("/api/case-bundles", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    assert verify(files, case_bundle.load_public_key(_station_key(case))).ok
    [entry] = [e for e in audit.entries(case.store.conn) if e.action == "case.export"]
    assert entry.actor == SUPERVISOR[0]
    assert json.loads(entry.detail)["manifest_sha256"] == r.headers["x-manifest-sha256"]
    assert case_export.ACTION == "case.export"


def test_a_zip_holding_one_name_twice_is_refused(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bundle(case, tmp_path)
    with zipfile.ZipFile(path, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr(f"records/{case.suspect.id}.json", b"{}")
    capsys.readouterr()
    assert edge_main(["case", "verify", str(path)]) == 2
    assert capsys.readouterr().out.strip() == (f"REFUSED: {path} holds records/{case.suspect.id}.json more than once, "
                                               "so which copy is evidence is ambiguous")


def _patch_headers(raw: bytes, name: str, local: tuple[int, bytes], central: tuple[int, bytes]) -> bytes:
    """`raw` with bytes of `name`'s local and central zip headers replaced (offset in the header, new bytes)."""
    data = bytearray(raw)
    for signature, (offset, new), name_at in ((b"PK\x03\x04", local, 30), (b"PK\x01\x02", central, 46)):
        at = data.index(signature)
        while data[at + name_at:at + name_at + len(name)] != name.encode():
            at = data.index(signature, at + 1)
        data[at + offset:at + offset + len(new)] = new
    return bytes(data)


@pytest.mark.parametrize("what, local, central, says", [
    ("encrypted", (6, b"\x01\x00"), (8, b"\x01\x00"), "is encrypted"),
    ("an unknown compression", (8, b"\x63\x00"), (10, b"\x63\x00"), "compression method is not supported"),
])
def test_a_zip_entry_python_cannot_read_is_refused_in_one_sentence(
        case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str,
        local: tuple[int, bytes], central: tuple[int, bytes], says: str) -> None:
    """A record marked (by another zip tool, or by hand) as encrypted or compressed by a method Python lacks ended
    `case verify` in a traceback (RuntimeError, NotImplementedError) instead of a line the expert reads."""
    path = _bundle(case, tmp_path)
    name = f"records/{case.suspect.id}.json"
    path.write_bytes(_patch_headers(path.read_bytes(), name, local, central))
    capsys.readouterr()
    assert edge_main(["case", "verify", str(path), "--key", _station_key(case)]) == 2
    [line] = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(f"REFUSED: file {name} in {path} cannot be read from the zip (") and says in line
    assert line.endswith("so it cannot be checked: it was changed or damaged after export, or packed by another tool")


def test_a_byte_changed_in_place_in_the_zip_names_that_file(case: Case, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Changed inside the zip without rewriting it, a file fails the zip's own CRC: the line names it."""
    assert case.suspect.scan is not None
    path = _bundle(case, tmp_path)
    name = f"scans/{case.suspect.scan.sha256}.npz"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len(name) + info.file_size // 2] ^= 0x01  # stored: the data follows the header
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert hub_main(["case", "verify", str(path), "--key", _station_key(case)]) == 2
    assert capsys.readouterr().out.strip() == (
        f"REFUSED: file {name} in {path} cannot be read from the zip (Bad CRC-32 for file '{name}'), so it cannot be "
        "checked: it was changed or damaged after export, or packed by another tool")
