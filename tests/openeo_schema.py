"""Validation against the official openEO API v1.2 document (../shared/conformance/openeo-api/openapi.yaml,
or STRATUS_OPENEO_API); tests skip where it is absent."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENEO_API = Path(os.environ.get("STRATUS_OPENEO_API")
                  or REPO_ROOT.parent / "shared" / "conformance" / "openeo-api" / "openapi.yaml")


@functools.cache
def _document() -> dict[str, Any]:
    if not OPENEO_API.is_file():
        import pytest  # noqa: PLC0415

        pytest.skip(f"{OPENEO_API} is absent (the openEO API document lives in ../shared/conformance/)")
    return yaml.safe_load(OPENEO_API.read_text())


def response_errors(path: str, value: Any, *, method: str = "get", status: str = "200") -> list[str]:
    """The schema violations of `value` as the answer of `method path` (path as in the document)."""
    from openapi_schema_validator import OAS30Validator  # noqa: PLC0415

    document = _document()
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    # the document's components beside the schema, so its local `$ref`s resolve
    validator = OAS30Validator({**schema, "components": document["components"]})
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(value)
            if not _ambiguous_summary(error)]


def _ambiguous_summary(error: Any) -> bool:
    """The document's summaries are `oneOf` [values, statistics, JSON schema], but its JSON schema allows any
    object, so every STAC range (`{"minimum": 0, "maximum": 100}`) matches two: a flaw of the document, not of
    the answer (the demo collection's `eo:cloud_cover` range trips it too)."""
    return (error.validator == "oneOf" and "is valid under each of" in error.message
            and len(error.absolute_path) >= 2 and error.absolute_path[-2] == "summaries")
