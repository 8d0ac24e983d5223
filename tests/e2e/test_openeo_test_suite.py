"""The official openeo-test-suite, fast subset, against the local system (`make conformance` runs all of it).

One test per module (WP2 collections, WP3 process metadata, WP4 API compliance, WP5 individual processes, WP6
workflows), each a pytest run of the suite through `conformance.run` with the documented skips of
`conformance/skips.py`; each must end without failures. The per-module counts are printed (`-s` shows them).
"""

from __future__ import annotations

import pytest
import requests

from conformance import run as conformance

pytestmark = pytest.mark.e2e

ADD = {"process_graph": {"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    try:
        return conformance.prepare_workdir(tmp_path_factory.mktemp("openeo-test-suite"))
    except conformance.SharedMaterialMissing as absent:
        pytest.skip(str(absent))


@pytest.fixture(scope="module")
def credentials(local_system):
    return conformance.Credentials.from_output(local_system.output, local_system.password)


@pytest.mark.parametrize("module", list(conformance.MODULES))
def test_the_fast_subset_of_each_module_passes(module, local_system, credentials, workdir):
    (outcome,) = conformance.run_suite(local_system.api_url, credentials, [module], fast=True, workdir=workdir)
    print(f"\n{conformance.format_table([outcome])}")
    assert outcome.ok, f"failures (log: {outcome.log}):\n{conformance.format_problems([outcome])}"
    assert outcome.passed > 0


def test_a_graph_without_save_result_answers_its_value_as_json(connection):
    # WP5's HTTP runner sends one-node graphs without save_result and reads the value from the JSON answer
    assert connection.execute(ADD) == 3


def test_a_json_result_comes_back_as_json(connection):
    # found by WP5: the API re-encoded the engine's JSON output and failed with 500
    graph = {"process_graph": {
        "add": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "add"}, "format": "JSON"},
                 "result": True}}}
    assert connection.execute(graph) == 3


def test_a_doubled_slash_after_the_api_url_is_tolerated(local_system, connection):
    # found by WP4: the suite joins the API URL (ending in "/") with paths starting with "/"
    headers = {"Authorization": f"Bearer {connection.auth.bearer}"}
    response = requests.get(f"{local_system.api_url}/openeo/1.2//jobs", headers=headers, timeout=30)
    assert response.status_code == 200 and "jobs" in response.json()
    # elsewhere an empty path segment stays an error (e.g. in a file path)
    response = requests.get(f"{local_system.api_url}/openeo/1.2/files/a//b", headers=headers, timeout=30)
    assert response.status_code == 400 and response.json()["code"] == "FilePathInvalid"
