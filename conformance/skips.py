"""What `make conformance` skips or corrects in the openeo-test-suite, each with the reason.

Only expectations that lie outside the openEO API and process specifications belong here (internet access,
specific data, a defect of the suite or of the spec document); where Stratus is wrong, the test stays and fails.
`SKIPS` and `OFFLINE_SKIPS` keys are `<path under openeo_test_suite/tests>::<test name>` patterns (fnmatch); WP5
(individual processes) also skips by rule: entries known to be wrong upstream and NaN/Infinity values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

PROCESS_TESTS = "processes/processing/"

SKIPS: dict[str, str] = {
    # WP4 API compliance
    "general/test_compliance.py::test_PUT_process_graphs_process_id":
        "stores the process under str(uuid4()), whose hyphens break the spec's process_graph_id pattern ^\\w+$ "
        "(openapi.yaml components/schemas/process_id), so 400 is the right answer; storing under a valid id is "
        "covered by test_GET_process_graphs_process_id and test_DELETE_process_graphs_process_id",
    "general/test_compliance.py::test_empty_PATCH_jobs_job_id":
        "expects 204 for a PATCH without any property, where the API's error catalogue (errors.json) has "
        "NoDataForUpdate (400, 'For PATCH requests: No valid data specified at all.') for batch jobs",
    "general/test_compliance.py::test_GET_jobs_job_id_results":
        "its jobs load collection CGLS_SSM_1KM (band B01) that only some back-ends have: elsewhere they end in "
        "`error`, the test waits 160 s for `finished` and then meets JobNotFinished as the spec prescribes",
    "general/test_compliance.py::test_POST_result":
        "expects 201 where the spec's POST /result answers 200, and loads collection CGLS_SSM_1KM (band B01) "
        "that only some back-ends have",
    # WP6 workflows
    "workflows/L1/test_load_save.py::test_load_save_netcdf_batch_job_metadata":
        "asserts the return value of lib.validate_stac.validate_stac_dict, which is None when the document is "
        "valid (it raises otherwise): fails on every back-end",
    "workflows/L1/test_apply.py::test_apply":
        "asserts max(clip(B04, 0, 1)) == 1, i.e. that the collection serves digital numbers (0-10000); Stratus "
        "applies the STAC raster:scale (0.0001) at load and serves reflectance, all below 1 in that window",
    "workflows/L1/test_reduce_bands.py::test_ndvi_*":
        "the result has no band dimension, which the suite's netCDF reader (lib.workflows.io) recognises only "
        "when the single variable is named 'var' (VITO/CDSE); Stratus names it 'data' (documented in "
        "/file_formats), so the reader adds a band dimension and counts 4 dimensions instead of 3",
    "workflows/L*/test_apply_dimension_L*.py::test_apply_dimension_ndvi*":
        "reads the band labels 0, 1, 2 from the netCDF variable names; Stratus writes CF names, which begin with "
        "a letter (CF-1.8 §2.3), as band_0, band_1, band_2, and keeps each label in the variable's `band` "
        "attribute",
    "workflows/L1/test_apply_dimension_L1.py::test_apply_dimension_quantiles_1":
        "computes 3 quantiles over `t` into the existing `bands` dimension of a 2-band cube and expects 3 band "
        "labels: the spec (apply_dimension: the target's values 'get replaced by the computed values') leaves "
        "no room for the 2 × 3 results; Stratus refuses a target dimension with more than one label",
    "workflows/L3/test_apply_dimension_L3.py::test_apply_dimension_order":
        "uses `order`, which Stratus does not offer (/processes omits it: it is not in profiles L1-L2A); the "
        "test checks only the process selection (skip_if_unselected_process), not support, so it fails instead "
        "of skipping",
}

# Where schemas.stacspec.org is unreachable (as in CI): stac-validator downloads the STAC JSON schemas (and
# those of the STAC extensions) at run time.
OFFLINE_SKIPS: dict[str, str] = {
    "collections/test_collections.py::test_get_collections*":
        "stac-validator downloads the STAC JSON schemas from schemas.stacspec.org, unreachable here",
}
STAC_SCHEMAS_HOST = "schemas.stacspec.org"

# Process tests whose arguments or expected result hold NaN or ±Infinity: JSON cannot carry them, and the
# suite's HTTP runner means to skip such tests (`ProcessTestRunner.is_json_only`: "the runner will skip all tests
# that contain non JSON values such as infinity and NaN") but raises ValueError, failing them instead.
NON_JSON_NUMBERS = ("NaN or ±Infinity in the arguments or the expected result: JSON cannot carry them "
                    "(the HTTP runner is documented to skip these tests)")


@cache
def known_wrong_entries() -> dict[str, str]:
    """openeo-processes test entries (`<process>-<index>`) known to be wrong, with the reason: the project's own
    conformance tests (tests/conformance/openeo_json5.py) run them corrected (`ERRATA`) or skip them (`BROKEN`);
    the suite runs them as they are, so a correct back-end fails them."""
    from tests.conformance.openeo_json5 import BROKEN, ERRATA

    return {**{key: f"upstream test entry wrong: {why}" for key, (why, _) in ERRATA.items()},
            **{key: f"upstream test entry inconsistent: {why}" for key, why in BROKEN.items()}}


def spec_errata(openapi: dict[str, Any]) -> dict[str, Any]:
    """The openEO API document (1.2.0) as WP4 should validate against it:

    - It is OpenAPI 3.0.2, but the suite validates with openapi-core's OpenAPI 3.1 validator, which ignores
      3.0's `nullable: true`: every property the spec allows to be null (e.g. `budget` in GET /me) would fail.
      Each nullable schema becomes `anyOf: [schema, {type: null}]`, the 3.1 spelling of the same thing.
    - `process_json_schema` (every process parameter and return schema, every file format parameter) is a
      `oneOf` of three permissive branches that an ordinary schema such as {"type": "string"} matches all at
      once, so no back-end can pass: `anyOf`, as proposed upstream (Open-EO/openeo-api#600).
    - Collection `summaries` values are a `oneOf` of a set of values, statistics and a JSON schema; statistics
      ({"minimum": 0, "maximum": 75}, the spec's own example) are also a valid JSON schema: `anyOf` as well.
    """
    fixed = _nullable_as_null_type(openapi)  # a new document: the caller's stays as it was
    schemas = fixed["components"]["schemas"]
    schemas["process_json_schema"]["anyOf"] = schemas["process_json_schema"].pop("oneOf")
    for schema in _walk(fixed):
        if {"$ref": "#/components/schemas/collection_summary_stats"} in schema.get("oneOf", []):
            schema["anyOf"] = schema.pop("oneOf")
    return fixed


def _nullable_as_null_type(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_as_null_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_as_null_type(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        return {"anyOf": [node, {"type": "null"}]}
    return node


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
