"""Paths and helpers shared by the tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared conformance material lives beside the project in ../shared/")
    return path


def api_module(name: str) -> ModuleType:
    """A module of the API Lambda, imported as in its task root `functions/api` (e.g. `routers.orders.caller`)."""
    root = str(REPO_ROOT / "functions" / "api")
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(name)
