"""The openEO API checks the account behind every token (re-read at most every few seconds): a deactivated
customer's tokens stop working, and a customer needs a scope to process through openEO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stratus.backend import Backend
from stratus.domain import principal
from stratus.domain.auth import sign_token
from stratus.store.models import UserModel

GRAPH = {"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


def customer_token(api, user_id: str, scopes=("service:ndvi-composite",), **claims) -> dict[str, str]:
    UserModel(user_id, password_hash="", client_secret_hash="argon2-hash", email=f"{user_id}@example.com",
              scopes=list(scopes), created=datetime.now(UTC)).save()
    token = sign_token(Backend(api.settings).signing_key(), user_id, timedelta(hours=1), **claims)
    return {"Authorization": f"Bearer basic//{token}"}


def test_a_deactivated_customer_cannot_use_the_openeo_api(api, monkeypatch):
    monkeypatch.setattr(principal, "ACCOUNT_CHECK_TTL_S", 0.0)  # no container cache: the check of every request
    headers = customer_token(api, "cus-erin")
    assert api.post("/openeo/1.2/jobs", headers=headers, json_body=GRAPH).status == 201
    UserModel("cus-erin").update(actions=[UserModel.active.set(False)])
    for method, path in (("POST", "/openeo/1.2/jobs"), ("GET", "/openeo/1.2/jobs"), ("POST", "/openeo/1.2/result")):
        refused = api.request(method, path, headers=headers, json_body=GRAPH)
        assert refused.status == 403 and refused.json()["code"] == "TokenInvalid", (method, path)


def test_a_customer_without_scopes_cannot_process_through_openeo(api):
    no_scopes = customer_token(api, "cus-none", scopes=())
    narrowed = customer_token(api, "cus-narrow", scope="")  # holds scopes, but the token is narrowed to none
    for headers in (no_scopes, narrowed):
        refused = api.post("/openeo/1.2/jobs", headers=headers, json_body=GRAPH)
        assert refused.status == 403 and refused.json()["code"] == "PermissionsInsufficient"
    assert api.post("/openeo/1.2/jobs", headers=customer_token(api, "cus-full"), json_body=GRAPH).status == 201


def test_plain_openeo_accounts_need_no_scope(api):
    assert api.post("/openeo/1.2/jobs", user="alice", json_body=GRAPH).status == 201
