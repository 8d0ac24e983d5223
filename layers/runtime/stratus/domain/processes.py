"""Predefined processes: the official openEO specs of the processes the engine implements.

The specs are copied verbatim from openeo-processes into `stratus/process_specs/` (never retyped);
a test checks that this set equals the engine's registry, so `/processes` lists exactly what runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from stratus.errors import ProcessGraphMissingException


@cache
def predefined_processes() -> tuple[dict[str, Any], ...]:
    folder = resources.files("stratus") / "process_specs"
    specs = [json.loads(f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".json")]
    return tuple(sorted(specs, key=lambda spec: spec["id"]))


def predefined_process_ids() -> set[str]:
    return {spec["id"] for spec in predefined_processes()}


def has_process_graph(process: Any) -> bool:
    """Whether `process` is an openEO process object with a non-empty `process_graph`."""
    return isinstance(process, Mapping) and isinstance(process.get("process_graph"), Mapping) \
        and bool(process["process_graph"])


def require_process_graph(process: Any) -> dict[str, Any]:
    """The process object itself; raises `ProcessGraphMissingException` without a process graph."""
    if not has_process_graph(process):
        raise ProcessGraphMissingException()
    return process
