"""Diagnostics on the gantry twin read its UHF reader over LLRP: session up, and the reference tag's TID read."""

from __future__ import annotations

from edge.diag.phases.rfid import REFERENCE_TID
from hil_tests.conftest import diag, phase


def test_the_uhf_reader_reads_the_reference_tag_by_tid(twin, tmp_path):
    rc, rec = diag(tmp_path, "--config", "examples/gantry.toml", "--phases", "links,rfid")
    assert rc == 0, rec
    uhf = {m["name"]: m for m in phase(rec, "rfid")["measurements"] if m["target"] == "uhf"}
    assert uhf["rfid.reader_connected"]["outcome"] == "PASS"
    assert uhf["rfid.right_tag"]["outcome"] == "PASS" and uhf["rfid.right_tag"]["detail"] == REFERENCE_TID
    links = {m["target"]: m for m in phase(rec, "links")["measurements"] if m["name"] == "links.reader_link_ok"}
    assert links["uhf"]["outcome"] == "PASS" and links["lane"]["outcome"] == "PASS"


def test_the_gantry_twin_diagnoses_its_uhf_antennas_and_its_cameras(twin, tmp_path):
    rc, rec = diag(tmp_path, "--config", "examples/gantry.toml", "--phases", "llrp,cameras")
    assert rc == 0, rec
    llrp = {(m["name"], m["target"]): m for m in phase(rec, "llrp")["measurements"]}
    assert {llrp[("llrp.antenna_connected", f"uhf/{a}")]["outcome"] for a in (1, 2)} == {"PASS"}
    assert llrp[("llrp.test_tag_rssi_dbm", "uhf/2")]["value"] == -55
    cameras = {(m["name"], m["target"]): m for m in phase(rec, "cameras")["measurements"]}
    assert cameras[("cameras.test_read", "front")]["outcome"] == "PASS"
    assert cameras[("cameras.test_read", "door")]["outcome"] == "PASS"
