"""API contract tests: the real API handler and domain code against an in-process emulator.

`api` calls `functions/api/app.lambda_handler` with REST proxy events built by the same code as
the local HTTP front, for any user created with `api.add_user`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from stratus import aws, resources
from stratus.backend import Backend
from stratus.settings import Settings
from stratus.store import models
from stratus_local.api_front import build_proxy_event
from stratus_local.handlers import load_handler
from stratus_local.lambda_context import LocalLambdaContext
from stratus_local.provision import provision


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ApiClient:
    settings: Settings
    handler: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, user_id: str, password: str = "a-long-password") -> str:
        """Creates the user and logs in; returns the bearer header value."""
        Backend(self.settings).auth.create_user(user_id, password)
        basic = base64.b64encode(f"{user_id}:{password}".encode()).decode()
        token = self.request("GET", "/openeo/1.2/credentials/basic",
                             headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
        self.tokens[user_id] = f"Bearer basic//{token}"
        return self.tokens[user_id]

    def request(self, method: str, path: str, *, user: str | None = None, json_body: Any = None,
                headers: dict[str, str] | None = None, data: bytes | None = None,
                content_type: str | None = None) -> Response:
        headers = dict(headers or {})
        if user is not None:
            headers["Authorization"] = self.tokens[user]
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        path, _, query = path.partition("?")
        builder = EnvironBuilder(path=path, query_string=query, method=method, headers=headers, data=data,
                                 content_type=content_type, base_url="http://testserver")
        event = build_proxy_event(Request(builder.get_environ()))
        result = self.handler(event, LocalLambdaContext(function_name="stratus-api"))
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        merged = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            merged[key.lower()] = values[-1]
        return Response(result["statusCode"], merged, raw)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw) -> Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(monkeypatch):
    """A fresh deployment in an in-process emulator with users `alice` and `bob` logged in."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        provisioned = provision(boto3.session.Session(region_name="eu-central-1"), Settings())
        for name, value in provisioned.settings.as_env().items():
            monkeypatch.setenv(name, value)
        models.configure(provisioned.settings)
        handler = load_handler(resources.FUNCTIONS["api"])
        # the handler caches its backend per container; a test is a fresh container
        import sys
        sys.modules["routers.shared.context"].backend.cache_clear()
        client = ApiClient(provisioned.settings, handler)
        client.add_user("alice")
        client.add_user("bob")
        yield client
        sys.modules["routers.shared.context"].backend.cache_clear()
    aws.reset_clients()
    for model in models.TABLES.values():
        model._connection = None
