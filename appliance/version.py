"""The project's version: one source of truth, `[project] version` in pyproject.toml.

An installed release (wheel, Debian package) reads it from its package metadata; a source checkout
reads pyproject.toml itself, because an editable install's metadata keeps the version it was
installed with.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "checkpoint-edge"
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@cache
def version() -> str:
    """`0.1.0`, or `0+unknown` when neither pyproject.toml nor the package metadata is there."""
    try:
        project = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == DISTRIBUTION and isinstance(project.get("version"), str):
        return str(project["version"])
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
