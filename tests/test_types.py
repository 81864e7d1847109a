"""The type checker is part of the test run: mypy over the packages, configured in pyproject.toml.

The cache lives in .mypy_cache at the repository root (git-ignored), so a warm run takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 280  # below pytest-timeout's 300 s, so a hung mypy reports its own output


def test_mypy_reports_no_errors() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=HANG_GUARD_S)
    assert proc.returncode == 0, f"mypy reports errors (exit status {proc.returncode}):\n{proc.stdout}{proc.stderr}"
