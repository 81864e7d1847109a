"""DICOS export of an inspection record, read back with pydicom: the DX pair, the machine and operator
threat detection reports, their references; export -> file drop import gives the same pixels; the
command line and the screen's download (supervisors only, audited)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DICOSDigitalXRayImageStorageForProcessing as DX_CLASS
from pydicom.uid import DICOSThreatDetectionReportStorage as TDR_CLASS

from central_sync.schema import (DetectionOut, Identity, InspectionRecord, ItemKind, ModelRef, Review, ScanRef,
                                 Verdict)
from drivers.retrofit import RetrofitConfig
from drivers.retrofit.filedrop import FileDropSource
from edge import audit
from edge.auth import add_user
from edge.cli import main
from edge.context import StationContext
from edge.dicos import Equipment, dicos_files, write_files
from edge.events import EventBus
from edge.store import Store, StoreWriter
from edge.web.app import create_app, ensure_schema
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, record_for, synthetic_scan
from models.scan import Scan

AT = datetime(2026, 12, 3, 8, 15, 30, 250000, tzinfo=timezone.utc)


def _scan() -> Scan:
    rng = np.random.default_rng(11)
    high = rng.integers(0, 65535, (60, 90), dtype=np.uint16)
    low = (high // 3 * 2).astype(np.uint16)
    return Scan(high=high, low=low, meta={"pixel_mm": 1.6, "kvp": 140.0, "source": "xray", "lines_per_s": 300})


def _record(scan: Scan, verdict: Verdict = Verdict.SUSPECT, review: Review | None = None) -> InspectionRecord:
    return InspectionRecord(
        id="0193a1b2c3d4e5f6a7b8c9d0e1", seq=42, station="x-7", lane="2", kind=ItemKind.CONTAINER,
        started_at=AT, decided_at=AT + timedelta(milliseconds=380),
        identities=[Identity(kind="container", value="CSQU3054383", source="ocr-top"),
                    Identity(kind="plate", value="粤Z·A123港", source="anpr")],
        scan=ScanRef(sha256=scan.sha256(), size=len(scan.to_bytes()), shape=scan.shape),
        detections=[DetectionOut(label="firearm", score=0.91, box=(10.0, 5.0, 40.0, 25.0)),
                    DetectionOut(label="cigarettes", score=0.64, box=(50.0, 30.0, 80.0, 55.0))]
        if verdict is Verdict.SUSPECT else [],
        model=ModelRef(name="cpe-gantry", version="2.1.0", sha256="ab" * 32), verdict=verdict,
        reason="detection" if verdict is Verdict.SUSPECT else "budget_missed",
        latencies_ms={"inference": 123.5}, budget_ms=2000, review=review)


REVIEW = Review(officer="B-0042", decided_at=AT + timedelta(minutes=2), outcome="threat_confirmed", label="firearm",
                boxes=[(12.0, 6.0, 38.0, 24.0)], note="pistol in the door panel")


def _read(files: dict[str, bytes]) -> dict[str, Dataset]:
    return {name.rsplit("-", 2)[-2] + "-" + name.rsplit("-", 1)[-1].removesuffix(".dcm"): pydicom.dcmread(io.BytesIO(data))
            for name, data in files.items()}


@pytest.fixture
def exported() -> tuple[Scan, InspectionRecord, dict[str, Dataset]]:
    scan = _scan()
    record = _record(scan, review=REVIEW)
    return scan, record, _read(dicos_files(record, scan, Equipment(station="x-7", serial="SN-991")))


def test_export_writes_a_dx_pair_and_two_reports(exported: tuple[Scan, InspectionRecord, dict[str, Dataset]]) -> None:
    _, record, ds = exported
    assert sorted(ds) == ["dx-high", "dx-low", "tdr-machine", "tdr-operator"]
    assert {d.SOPClassUID for k, d in ds.items() if k.startswith("dx")} == {DX_CLASS}
    assert {d.SOPClassUID for k, d in ds.items() if k.startswith("tdr")} == {TDR_CLASS}
    assert len({d.SOPInstanceUID for d in ds.values()}) == 4
    for d in ds.values():
        assert d.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
        assert d.PatientID == record.id and d.IssuerOfPatientID == "x-7" and d.OOIType == "CARGO"
        assert d.StudyInstanceUID == ds["dx-high"].StudyInstanceUID and d.StudyDate == "20261203"
        assert d.FrameOfReferenceUID == ds["dx-high"].FrameOfReferenceUID
        assert (d.Manufacturer, d.StationName, d.DeviceSerialNumber) == ("Checkpoint Edge", "x-7", "SN-991")
        assert [(i.PatientID, i.IssuerOfPatientID) for i in d.OtherPatientIDsSequence] == [
            ("CSQU3054383", "container:ocr-top"), ("粤Z·A123港", "plate:anpr")]
        assert d.DICOSVersion == "V03"


def test_dx_images_hold_both_energies_with_spacing_and_kvp(
        exported: tuple[Scan, InspectionRecord, dict[str, Dataset]]) -> None:
    scan, _, ds = exported
    high, low = ds["dx-high"], ds["dx-low"]
    assert high.SeriesInstanceUID == low.SeriesInstanceUID and high.Modality == low.Modality == "DX"
    assert list(high.ImageType) == ["ORIGINAL", "HIGH ENERGY"] and list(low.ImageType) == ["ORIGINAL", "LOW ENERGY"]
    for d, pixels in ((high, scan.high), (low, scan.low)):
        assert d.PresentationIntentType == "FOR PROCESSING"
        assert (d.Rows, d.Columns, d.BitsAllocated, d.BitsStored, d.PixelRepresentation) == (60, 90, 16, 16, 0)
        assert d.pixel_array.dtype == np.uint16 and d.pixel_array.shape == (60, 90)
        np.testing.assert_array_equal(d.pixel_array, pixels)
        assert [float(v) for v in d.PixelSpacing] == [1.6, 1.6] == [float(v) for v in d.ImagerPixelSpacing]
        assert float(d.KVP) == 140.0 and d.AcquisitionDateTime == "20261203081530.250000+0000"
        assert (d.PixelIntensityRelationship, d.PixelIntensityRelationshipSign) == ("LIN", 1)


def _dx_refs(d: Sequence) -> set[tuple[str, str]]:
    return {(r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID) for r in d}


def test_machine_report_references_the_images_and_carries_each_detection(
        exported: tuple[Scan, InspectionRecord, dict[str, Dataset]]) -> None:
    _, record, ds = exported
    tdr, images = ds["tdr-machine"], {(DX_CLASS, ds["dx-high"].SOPInstanceUID), (DX_CLASS, ds["dx-low"].SOPInstanceUID)}
    assert (tdr.Modality, tdr.TDRType, tdr.AlarmDecision, tdr.AbortFlag) == ("TDR", "MACHINE", "ALARM", "SUCCESS")
    assert list(tdr.ThreatDetectionAlgorithmAndVersion) == ["cpe-gantry", "2.1.0", "ab" * 8]
    assert tdr.AlarmDecisionTime == "20261203081530.630000+0000" and tdr.TotalProcessingTime == 123.5
    assert (tdr.NumberOfTotalObjects, tdr.NumberOfAlarmObjects) == (2, 2)
    assert tdr.ReferencedSeriesSequence[0].SeriesInstanceUID == ds["dx-high"].SeriesInstanceUID
    assert _dx_refs(tdr.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == images
    for pto, det in zip(tdr.ThreatSequence, record.detections, strict=True):
        [assessment], [rep] = pto.ATDAssessmentSequence, pto.PTORepresentationSequence
        assert assessment.ThreatCategoryDescription == det.label and assessment.ATDAssessmentFlag == "THREAT"
        assert assessment.ATDAssessmentProbability == pytest.approx(det.score)
        assert _dx_refs(rep.ReferencedInstanceSequence) == images
        x0, y0, x1, y1 = det.box
        assert list(rep.ThreatROIVoxelSequence[0].ThreatROIBase) == [x0, y0, 0.0]
        assert list(rep.ThreatROIVoxelSequence[0].ThreatROIExtents) == [x1 - x0, y1 - y0, 1.0]
        assert list(rep.BoundingPolygon) == [x0, y0, 0.0, x1, y1, 0.0]
    assert [p.ATDAssessmentSequence[0].ThreatCategory for p in tdr.ThreatSequence] == ["PI", "CONTRABAND"]


def test_operator_report_names_the_officer_and_references_the_machine_report(
        exported: tuple[Scan, InspectionRecord, dict[str, Dataset]]) -> None:
    _, _, ds = exported
    tdr = ds["tdr-operator"]
    assert (tdr.TDRType, tdr.AlarmDecision) == ("OPERATOR", "ALARM")
    assert tdr.AlarmDecisionTime == "20261203081730.250000+0000"
    code = tdr.OperatorIdentificationSequence[0].PersonIdentificationCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("B-0042", "99CPE") and tdr.OperatorsName == "B-0042"
    assert _dx_refs(tdr.ReferencedTDRInstanceSequence) == {(TDR_CLASS, ds["tdr-machine"].SOPInstanceUID)}
    [pto] = tdr.ThreatSequence
    assert pto.ATDAssessmentSequence[0].ThreatCategoryDescription == "firearm"
    assert "ATDAssessmentProbability" not in pto.ATDAssessmentSequence[0]  # an officer gives no score
    assert list(pto.PTORepresentationSequence[0].BoundingPolygon) == [12.0, 6.0, 0.0, 38.0, 24.0, 0.0]


def test_a_manual_unreviewed_record_reports_no_decision_and_no_operator_report() -> None:
    scan = _scan()
    files = dicos_files(_record(scan, Verdict.MANUAL), scan)
    ds = _read(files)
    assert sorted(ds) == ["dx-high", "dx-low", "tdr-machine"]
    tdr = ds["tdr-machine"]
    assert (tdr.AlarmDecision, tdr.AbortFlag, tdr.NumberOfTotalObjects) == ("UNKNOWN", "ABORT", 0)


def test_the_same_record_exports_to_the_same_bytes() -> None:
    scan = _scan()
    record = _record(scan, review=REVIEW)
    assert dicos_files(record, scan) == dicos_files(record, scan)
    other = record.model_copy(update={"id": "0193a1b2c3d4e5f6a7b8c9d0e2"})
    assert not set(_uids(dicos_files(record, scan))) & set(_uids(dicos_files(other, scan)))


def _uids(files: dict[str, bytes]) -> list[str]:
    return [str(pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID) for b in files.values()]


async def test_round_trip_export_then_file_drop_import_gives_the_same_pixels(tmp_path: Path) -> None:
    scan = _scan()
    drop = tmp_path / "drop"
    write_files({n: b for n, b in dicos_files(_record(scan, review=REVIEW), scan).items() if "-dx-" in n}, drop)
    it = FileDropSource(RetrofitConfig(kind="filedrop", folder=drop, settle_ms=100, poll_ms=20), "cabinet").scans()
    async with asyncio.timeout(10):
        got = await anext(it)
    await it.aclose()
    assert isinstance(got, Scan)
    np.testing.assert_array_equal(got.high, scan.high)
    np.testing.assert_array_equal(got.low, scan.low)
    assert (got.meta["pixel_mm"], got.meta["kvp"]) == (1.6, 140.0)


def _station(tmp_path: Path, store_scan: bool = True) -> tuple[Path, InspectionRecord]:
    data = tmp_path / "data"
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nid = "x-7"\nkind = "xray"\nitem_kind = "baggage"\nbudget_ms = 500\n'
                      f'data_dir = "{data}"\n\n[devices.source]\nkind = "filedrop"\nfolder = "{tmp_path / "drop"}"\n')
    scan = _scan()
    record = _record(scan, review=REVIEW)
    with Store(data, station="x-7") as store:
        stored = store.put_scan(scan.sha256(), scan.to_bytes()) if store_scan else False
        record = store.commit(record, stored)
    return config, record


def test_cli_writes_the_files_and_audits_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, record = _station(tmp_path)
    out = tmp_path / "out"
    assert main(["export-dicos", record.id, "--config", str(config), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{record.id}-{k}.dcm" for k in ("dx-high", "dx-low", "tdr-machine", "tdr-operator"))
    assert capsys.readouterr().out.count(".dcm") == 4
    with Store(tmp_path / "data", station="x-7") as store:
        [entry] = [e for e in audit.entries(store.conn) if e.action == "export.dicos"]
    assert (entry.actor, entry.object) == ("cli", record.id)


def test_cli_refuses_a_record_without_its_scan_in_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, record = _station(tmp_path, store_scan=False)
    assert main(["export-dicos", record.id, "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"edge export-dicos: record {record.id}'s scan ") and "is no longer kept at" in err
    assert "\n" not in err and not (tmp_path / "out").exists()
    assert main(["export-dicos", "nope", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "record nope is not in the station store" in capsys.readouterr().err


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[tuple[Store, Callable[[tuple[str, str] | None], TestClient]]]:
    """The station screen on a real store, with the demo users (officer, supervisor, technician)."""
    store = Store(tmp_path / "data", station="t-1").open()
    ensure_schema(store)
    for badge, name, role, pin in DEMO_USERS:
        add_user(store, badge, name, role, pin)
    writer = StoreWriter(store)
    ctx = StationContext("t-1", "xray", "1", 400.0, writer, EventBus(), lambda: {})
    app = create_app(ctx, WebConfig(tip=TipConfig(enabled=False)))
    with contextlib.ExitStack() as stack:
        def client(who: tuple[str, str] | None) -> TestClient:
            c = stack.enter_context(TestClient(app))
            if who:
                assert c.post("/api/signin", json={"badge": who[0], "pin": who[1]}).status_code == 200
            return c
        yield store, client
    asyncio.run(writer.__aexit__(None, None, None))


def _item(store: Store, rng: np.random.Generator, store_scan: bool = True) -> InspectionRecord:
    scan, truth = synthetic_scan(rng, threat=True)
    record = record_for(scan, Verdict.SUSPECT, "detection", truth, station="t-1")
    assert record.scan is not None
    stored = store.put_scan(record.scan.sha256, scan.to_bytes()) if store_scan else False
    return store.commit(record, stored)


def test_screen_download_is_for_supervisors_and_audited(
        screen: tuple[Store, Callable[[tuple[str, str] | None], TestClient]]) -> None:
    store, client = screen
    officer, supervisor = ((b, p) for b, _, role, p in DEMO_USERS if role in ("officer", "supervisor"))
    rng = np.random.default_rng(3)
    record, bare = _item(store, rng), _item(store, rng, store_scan=False)
    assert client(officer).get(f"/api/cases/{record.id}/dicos.zip").status_code == 403
    sup = client(supervisor)
    r = sup.get(f"/api/cases/{record.id}/dicos.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = sorted(zf.namelist())
        high = pydicom.dcmread(io.BytesIO(zf.read(f"{record.id}-dx-high.dcm")))
    assert names == sorted(f"{record.id}-{k}.dcm" for k in ("dx-high", "dx-low", "tdr-machine"))
    assert record.scan is not None and high.pixel_array.shape == tuple(record.scan.shape)
    gone = sup.get(f"/api/cases/{bare.id}/dicos.zip")
    assert gone.status_code == 404 and gone.json()["detail"] == "dicos_unavailable"
    [entry] = [e for e in audit.entries(store.conn) if e.action == "export.dicos"]
    assert (entry.actor, entry.object) == (supervisor[0], record.id)
