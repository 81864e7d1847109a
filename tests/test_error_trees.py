"""Every package's exceptions hang from its one root and are drawn in its errors.py docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

from central_sync.errors import SyncError
from drivers.errors import DriverError, LinkLost
from edge.errors import EdgeError
from firmware_bridge.errors import BridgeError
from models.errors import ModelError
from risk.errors import RiskError

ROOTS = {"drivers": DriverError, "edge": EdgeError, "central_sync": SyncError, "firmware_bridge": BridgeError,
         "models": ModelError, "risk": RiskError}
# Deliberate grafts onto another package's branch, so that its handlers catch them.
GRAFTS = {"edge.diag.context.IoTimeout": LinkLost}
OPTIONAL = ("models.training",)  # needs torch, which only the training environment installs


def exceptions_of(package: str) -> list[type[BaseException]]:
    """Exception classes defined in any module of `package` (every module is imported)."""
    root = importlib.import_module(package)
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if info.name.endswith("__main__") or info.name.startswith(OPTIONAL):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.split(".")[0] == package:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_derives_from_its_package_root(package: str) -> None:
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in exceptions_of(package)
              if not issubclass(cls, GRAFTS.get(f"{cls.__module__}.{cls.__qualname__}", ROOTS[package]))]
    assert not strays, f"not under {ROOTS[package].__name__}: {', '.join(strays)}"


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_is_drawn_in_the_tree(package: str) -> None:
    tree = importlib.import_module(f"{package}.errors").__doc__ or ""
    undrawn = [f"{cls.__module__}.{cls.__qualname__}" for cls in exceptions_of(package) if cls.__name__ not in tree]
    assert not undrawn, f"not drawn in {package}/errors.py: {', '.join(undrawn)}"


def test_no_two_exceptions_share_a_name() -> None:
    where: dict[str, set[str]] = defaultdict(set)
    for package in ROOTS:
        for cls in exceptions_of(package):
            where[cls.__name__].add(cls.__module__)
    clashes = {name: sorted(mods) for name, mods in where.items() if len(mods) > 1}
    assert not clashes, f"one name, several exceptions: {clashes}"
