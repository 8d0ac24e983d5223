"""The UDF runtimes the engine offers (`GET /udf_runtimes`, `run_udf`) and the sandbox's limits: plain
data, so the API can describe what the processing container runs without importing it. A unit test
checks the library versions against the ones installed with the engine."""

from __future__ import annotations

from typing import Any

PYTHON = "Python"
PYTHON_VERSIONS = ("3", "3.11")  # "3" is the client's default; the image is python:3.11
DEFAULT_PYTHON_VERSION = "3"

# What a UDF can import (the engine's own pins in constraints.txt); `openeo` is Stratus's shim of the
# client's `openeo.udf` API (the client itself is not installed).
PYTHON_LIBRARIES = {
    "numpy": "2.4.6",
    "pandas": "2.3.3",
    "xarray": "2026.9.0",
    "shapely": "2.2.0",
    "pyproj": "3.7.2",
    "openeo": "0.53.0",
}

# Per call of a UDF (one call per tile where the graph runs tile by tile). The wall-clock limit ends it
# from outside; CPU seconds and memory are the process's own rlimits (memory as address space).
UDF_WALL_SECONDS = 600
UDF_CPU_SECONDS = 600
UDF_MEMORY_MIB = 4096
UDF_OUTPUT_MIB = 4096  # the largest file the UDF process may write (its result)

# Operator setting: "seccomp" (default: refuse to run UDFs where the kernel filter can't be installed)
# or "process" (a weaker sandbox without the kernel filter: own process, limits, clean environment,
# audit hook; for a local machine that lacks seccomp only).
SANDBOX_MODE_ENV = "STRATUS_UDF_SANDBOX"
SANDBOX_MODES = ("seccomp", "process")

_SANDBOX_DESCRIPTION = (
    "UDFs run in a process of their own with a clean environment (no credentials), a private temporary "
    f"directory, at most {UDF_WALL_SECONDS} s, {UDF_CPU_SECONDS} CPU-s and {UDF_MEMORY_MIB} MiB per call, and no "
    "network (a seccomp filter denies sockets, new programs and processes). The openeo client's UDF API "
    "(openeo.udf: apply_datacube, apply_timeseries, apply_udf_data, XarrayDataCube, UdfData, inspect) is "
    "available; other packages can't be installed.")


def udf_runtimes() -> dict[str, Any]:
    """The `GET /udf_runtimes` document (openEO API 1.2)."""
    libraries = {name: {"version": version} for name, version in PYTHON_LIBRARIES.items()}
    return {
        PYTHON: {
            "title": "Python 3",
            "description": _SANDBOX_DESCRIPTION,
            "type": "language",
            "default": DEFAULT_PYTHON_VERSION,
            "versions": {version: {"libraries": libraries} for version in PYTHON_VERSIONS},
        }
    }
