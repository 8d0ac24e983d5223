"""Our openEO error classes agree with the spec's errors.json."""

import json

import pytest

from stratus.errors import ALL_ERRORS, BadRequestException
from tests.support import CONFORMANCE, require_shared


@pytest.mark.parametrize("error_class", [c for c in ALL_ERRORS if c is not BadRequestException],
                         ids=lambda c: c.__name__)
def test_error_matches_spec(error_class):
    spec = json.loads(require_shared(CONFORMANCE / "openeo-api" / "errors.json").read_text())
    # Given the spec entry of the class' code
    entry = spec[error_class.code]
    # Then status and message template are the spec's
    assert error_class.status_code == entry["http"]
    assert error_class.message_template == entry["message"]
    assert error_class.__name__ == f"{error_class.code}Exception"


def test_error_body_has_openeo_fields():
    error = ALL_ERRORS[0](message="boom")
    body = error.to_dict()
    assert set(body) >= {"id", "code", "message"}
    assert body["message"] == "boom"
