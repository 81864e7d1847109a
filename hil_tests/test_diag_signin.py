"""Who ran the plan: the technician signs in with badge + PIN as on the station screen; others are refused."""

from __future__ import annotations

import io

from edge.auth import add_user
from edge.diag.cli import AUTH_EXIT, USAGE_EXIT, main_diag, parser
from edge.store import Store
from hil_tests.conftest import TECH_BADGE, TECH_PIN, diag


def test_the_record_names_the_signed_in_technician(twin, tmp_path):
    rc, rec = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock")
    assert rc == 0 and rec["technician"] == {"badge": TECH_BADGE, "name": "CI Technician", "role": "technician"}


def test_a_wrong_pin_is_refused_and_nothing_runs(twin, tmp_path, capsys):
    rc, rec = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock", pin="9999")
    assert rc == AUTH_EXIT and rec == {}
    assert "badge or PIN not accepted" in capsys.readouterr().err


def test_an_unknown_badge_given_as_free_text_is_refused(twin, tmp_path):
    rc, rec = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock", technician="CI-0001")
    assert rc == AUTH_EXIT and rec == {}


def test_an_officer_may_not_run_diagnostics(twin, tmp_path, capsys):
    with Store(tmp_path / "data") as store:
        add_user(store, "0FF1CE01", "An Officer", "officer", "1357")
    rc, rec = diag(tmp_path, "--config", "examples/xray.toml", "--phases", "clock", technician="0FF1CE01",
                   pin="1357")
    assert rc == AUTH_EXIT and rec == {}
    assert "role officer" in capsys.readouterr().err


def test_the_pin_is_never_a_command_line_option():
    assert not [a for a in parser()._actions if "pin" in a.dest and a.dest != "pin_stdin"]


def test_a_run_on_hardware_needs_a_technician(tmp_path, capsys):
    cfg = tmp_path / "real.toml"
    cfg.write_text('[station]\nid = "c-1"\nkind = "xray"\nitem_kind = "parcel"\nbudget_ms = 2000\n'
                   f'data_dir = "{tmp_path}"\n[devices.source]\nkind = "filedrop"\nfolder = "{tmp_path}"\n')
    rc = main_diag(["--config", str(cfg), "--out", str(tmp_path / "out")], stdin=io.StringIO(TECH_PIN + "\n"))
    assert rc == USAGE_EXIT and "--technician" in capsys.readouterr().err
