"""Runs stac-api-validator with the JSON schemas it would download served from local copies, so it works
without internet access. Runs inside the validator's own virtualenv (`conformance/stac-api-validator.txt`).

The STAC 1.1 core and GeoJSON schemas come from pystac's bundle (a dependency of the validator). Extension
schemas (stac-extensions.github.io) have no local copy: they are answered with the empty schema, so extension
fields are not checked; their URLs are printed at the end (`OFFLINE-UNCHECKED <url>`).
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_CORE = re.compile(r"^/v1\.1\.0/(?:item|collection|catalog)-spec/json-schema/([a-z-]+\.json)$")
unchecked: set[str] = set()
_send = HTTPAdapter.send


def _schema(url: str) -> dict | None:
    parsed = urlparse(url)
    bundle = resources.files("pystac.validation.jsonschemas")
    if parsed.hostname == "schemas.stacspec.org" and (match := _CORE.match(parsed.path)):
        return json.loads((bundle / "stac-spec" / "v1.1.0" / match.group(1)).read_text())
    if parsed.hostname == "geojson.org":
        return json.loads((bundle / "geojson" / parsed.path.rsplit("/", 1)[-1]).read_text())
    unchecked.add(url)
    return {}


def _offline_send(adapter: HTTPAdapter, request: requests.PreparedRequest, **kwargs) -> requests.Response:
    if urlparse(request.url).hostname in _LOCAL_HOSTS:
        response = _send(adapter, request, **kwargs)
        if response.status_code >= 500:  # the validator stops on some without saying why: say it here
            print(f"SERVER-ERROR {request.method} {request.url} {response.status_code} {response.text[:1000]}",
                  file=sys.stderr)
        return response
    response = requests.Response()
    response.status_code = 200
    response.url = request.url
    response.request = request
    response.headers["Content-Type"] = "application/schema+json"
    response._content = json.dumps(_schema(request.url)).encode()
    return response


def main() -> int:
    HTTPAdapter.send = _offline_send
    from stac_api_validator.__main__ import main as validate

    try:
        status = int(validate.main(args=sys.argv[1:], standalone_mode=False) or 0)  # 1: the validator crashed
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    for url in sorted(unchecked):
        print(f"OFFLINE-UNCHECKED {url}")
    return status


if __name__ == "__main__":
    sys.exit(main())
