"""The type checker is part of the test run: mypy over the packages, configured in pyproject.toml.

The cache lives in .mypy_cache at the repository root (git-ignored), so a warm run takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 280  # below pytest-timeout's 300 s, so a hung mypy reports its own output


def test_mypy_reports_no_errors() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)
    assert proc.returncode == 0, f"mypy reports errors (exit status {proc.returncode}):\n{proc.stdout}{proc.stderr}"


# Imports added for the type checker must not form import cycles at run time: each of these
# modules imports in a fresh interpreter on its own (drivers.plc.config needs the state module's
# Light only for an annotation, while drivers.plc.state imports SafeRequest from the config).
@pytest.mark.parametrize("module", ["drivers.plc.config", "drivers.plc.state", "drivers.plc", "edge.stations.acquisition"])
def test_module_imports_on_its_own(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"importing {module} alone fails:\n{proc.stderr}"
