"""A bounded, derandomized run of the property-based fuzzer (`conformance.fuzz`, schemathesis) against
both OpenAPI documents: generated valid and invalid requests for every operation, through the local
API Gateway front into the real handler. The bar is no server error. `make conformance` runs the full
fuzz (many more examples per operation, random seeds)."""

from __future__ import annotations

import pytest

from conformance.fuzz import fuzz, fuzz_target, openeo_document, order_document

EXAMPLES_PER_OPERATION = 4


@pytest.fixture(scope="module")
def target():
    with fuzz_target() as target:
        yield target


def test_the_order_api_answers_fuzzed_requests_without_server_errors(target):
    report = fuzz(target, order_document(), target.order_auth, max_examples=EXAMPLES_PER_OPERATION, seed=0)
    print(f"order service: {report.summary()}")
    assert report.operations >= 20 and report.requests >= report.operations
    assert report.server_errors == []


def test_the_openeo_api_answers_fuzzed_requests_without_server_errors(target):
    document = openeo_document()
    if document is None:
        pytest.skip("../shared/conformance/openeo-api/openapi.yaml is absent")
    report = fuzz(target, document, target.openeo_auth, max_examples=EXAMPLES_PER_OPERATION, seed=0)
    print(f"openEO API: {report.summary()}")
    assert report.operations >= 30 and report.requests >= report.operations
    assert report.server_errors == []
