"""Order-service accounts through the real API handler: `/api/v1/auth/*` and `/api/v1/crm/*`."""

from __future__ import annotations

import base64
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from stratus import resources
from stratus.backend import Backend
from stratus.store.models import UserModel

V1 = "/api/v1"
PASSWORD = "a-good-password"
FORM = "application/x-www-form-urlencoded"
GRAPH = {"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


@pytest.fixture
def api_ses(api):
    """The API with the notification sender verified in the emulator's SES (as provisioning does)."""
    boto3.client("ses", region_name="eu-central-1").verify_email_identity(EmailAddress=api.settings.notification_sender)
    return api


def outbox() -> list:
    return ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages


def verification_token(email: str) -> str:
    """The token of the newest verification e-mail to `email` in the emulator's SES."""
    body = next(m.body for m in reversed(outbox()) if m.destinations["ToAddresses"] == [email.lower()]
                and "Verification token" in m.body)
    return re.search(r"Verification token: (\S+)", body).group(1)


def register(api, email="ann@example.org", name="Ann", password=PASSWORD) -> dict:
    """register -> the verification e-mail -> verify, as a new customer does."""
    boto3.client("ses", region_name="eu-central-1").verify_email_identity(EmailAddress=api.settings.notification_sender)
    response = api.post(f"{V1}/auth/register", json_body={"name": name, "email": email, "password": password})
    assert response.status == 202, response.body
    verified = api.post(f"{V1}/auth/register/verify", json_body={"token": verification_token(email)})
    assert verified.status == 201, verified.body
    assert verified.headers["cache-control"] == "no-store"
    return verified.json()


def token(api, **params) -> dict:
    response = api.post(f"{V1}/auth/token", data=urlencode(params).encode(), content_type=FORM)
    assert response.status == 200, response.body
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def client_token(api, customer: dict) -> str:
    return token(api, grant_type="client_credentials", client_id=customer["client_id"],
                 client_secret=customer["client_secret"])["access_token"]


def admin_token(api) -> str:
    customer_id, secret = Backend(api.settings).customers.ensure_admin("admin@example.org", "admin-password")
    return token(api, grant_type="client_credentials", client_id=customer_id, client_secret=secret)["access_token"]


def test_register_then_both_grants_then_me(api):
    customer = register(api)
    assert customer["client_id"] == customer["customer_id"] and customer["client_secret"]
    assert customer["scopes"] == sorted(resources.DEFAULT_CUSTOMER_SCOPES) and customer["active"] is True
    assert not any("hash" in key for key in customer)

    by_secret = token(api, grant_type="client_credentials", client_id=customer["client_id"],
                      client_secret=customer["client_secret"])
    assert by_secret["token_type"] == "Bearer" and by_secret["expires_in"] == resources.TOKEN_LIFETIME_S
    assert by_secret["scope"].split() == sorted(resources.DEFAULT_CUSTOMER_SCOPES)
    by_password = token(api, grant_type="password", username="Ann@Example.org", password=PASSWORD)
    basic = base64.b64encode(f"{customer['client_id']}:{customer['client_secret']}".encode()).decode()
    by_basic = api.post(f"{V1}/auth/token", data=b"grant_type=client_credentials", content_type=FORM,
                        headers={"Authorization": f"Basic {basic}"})
    by_json = api.post(f"{V1}/auth/token", json_body={"grant_type": "password", "username": "ann@example.org",
                                                      "password": PASSWORD})
    assert by_basic.status == 200 and by_json.status == 200

    for access_token in (by_secret["access_token"], by_password["access_token"], by_basic.json()["access_token"]):
        me = api.get(f"{V1}/auth/me", headers=bearer(access_token))
        assert me.status == 200 and me.json()["customer_id"] == customer["customer_id"]
        assert me.json()["email"] == "ann@example.org"


def test_registration_answers_alike_for_new_and_taken_addresses(api):
    register(api)
    before = len(outbox())
    taken = api.post(f"{V1}/auth/register", json_body={"name": "A", "email": "ANN@example.org", "password": PASSWORD})
    new = api.post(f"{V1}/auth/register", json_body={"name": "A", "email": "new@example.org", "password": PASSWORD})
    assert taken.status == new.status == 202 and taken.json() == new.json()
    assert set(taken.headers) == set(new.headers)
    notice, verification = outbox()[before:]
    assert notice.destinations["ToAddresses"] == ["ann@example.org"] and "has an account already" in notice.body
    assert verification.destinations["ToAddresses"] == ["new@example.org"]
    assert "Verification token" in verification.body and "http://testserver/api/v1/auth/register/verify" in \
        verification.body
    wrong = api.post(f"{V1}/auth/register/verify", json_body={"token": "not-a-token"})
    assert wrong.status == 400 and wrong.json()["code"] == "RegistrationTokenInvalid"


def test_parallel_registrations_of_one_address_give_one_account(api, monkeypatch):
    monkeypatch.setattr(resources, "REGISTRATIONS_PER_EMAIL", (20, 3600))  # let all ten through the rate limit
    sys.modules["routers.shared.context"].backend.cache_clear()
    boto3.client("ses", region_name="eu-central-1").verify_email_identity(EmailAddress=api.settings.notification_sender)
    body = {"name": "Eve", "email": "eve@example.org", "password": PASSWORD}
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: api.post(f"{V1}/auth/register", json_body=body).status, range(10)))
    assert statuses == [202] * 10
    tokens = [re.search(r"Verification token: (\S+)", m.body).group(1) for m in outbox()
              if m.destinations["ToAddresses"] == ["eve@example.org"] and "Verification token" in m.body]
    with ThreadPoolExecutor(max_workers=10) as pool:
        verified = list(pool.map(lambda t: api.post(f"{V1}/auth/register/verify", json_body={"token": t}), tokens))
    codes = sorted(r.status for r in verified)
    print(f"\n10 parallel registrations of one address: {len(tokens)} verification e-mails, verified in parallel: "
          f"{codes.count(201)} account(s), {codes.count(409)} refused")
    assert codes.count(201) == 1 and set(codes) <= {201, 409}
    assert len(list(UserModel.scan(UserModel.email == "eve@example.org"))) == 1


def test_registration_is_rate_limited_per_client(api):
    boto3.client("ses", region_name="eu-central-1").verify_email_identity(EmailAddress=api.settings.notification_sender)
    limit, _ = resources.REGISTRATIONS_PER_CLIENT
    for i in range(limit):
        accepted = api.post(f"{V1}/auth/register", json_body={"name": "A", "email": f"r{i}@example.org",
                                                              "password": PASSWORD})
        assert accepted.status == 202
    refused = api.post(f"{V1}/auth/register", json_body={"name": "A", "email": "late@example.org",
                                                         "password": PASSWORD})
    assert refused.status == 429 and refused.json()["code"] == "TooManyRequests"
    assert 0 < int(refused.headers["retry-after"]) <= 3600


def test_registration_refusals(api):
    bad = api.post(f"{V1}/auth/register", json_body={"name": "A", "email": "x@example.org", "password": "short"})
    assert bad.status == 400 and bad.json()["code"] == "InvalidRequest"
    not_json = api.post(f"{V1}/auth/register", data=b"{", content_type="application/json")
    assert not_json.status == 400


def test_token_refusals_use_rfc6749_errors(api):
    customer = register(api)
    wrong = api.post(f"{V1}/auth/token", content_type=FORM, data=urlencode(
        {"grant_type": "client_credentials", "client_id": customer["client_id"], "client_secret": "wrong"}).encode())
    assert wrong.status == 401 and wrong.json()["code"] == "invalid_client" == wrong.json()["error"]
    assert wrong.headers["cache-control"] == "no-store"
    basic = base64.b64encode(f"{customer['client_id']}:nope".encode()).decode()
    wrong_basic = api.post(f"{V1}/auth/token", data=b"grant_type=client_credentials", content_type=FORM,
                           headers={"Authorization": f"Basic {basic}"})
    assert wrong_basic.status == 401 and "www-authenticate" in wrong_basic.headers
    bad_password = api.post(f"{V1}/auth/token", content_type=FORM, data=urlencode(
        {"grant_type": "password", "username": "ann@example.org", "password": "wrong-password"}).encode())
    assert bad_password.status == 400 and bad_password.json()["error"] == "invalid_grant"
    unsupported = api.post(f"{V1}/auth/token", content_type=FORM, data=b"grant_type=implicit")
    assert unsupported.status == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    missing = api.post(f"{V1}/auth/token", content_type=FORM, data=b"")
    assert missing.status == 400 and missing.json()["error"] == "invalid_request"
    repeated = api.post(f"{V1}/auth/token", content_type=FORM, data=b"grant_type=password&grant_type=password")
    assert repeated.status == 400 and repeated.json()["error"] == "invalid_request"


def test_bearer_refusals(api):
    assert api.get(f"{V1}/auth/me").json()["code"] == "AuthenticationRequired"
    invalid = api.get(f"{V1}/auth/me", headers=bearer("not-a-token"))
    assert invalid.status == 401 and invalid.json()["code"] == "TokenInvalid"


def test_deactivated_customer_is_refused(api):
    customer = register(api)
    access_token = client_token(api, customer)
    admin = bearer(admin_token(api))
    deactivated = api.post(f"{V1}/crm/customers/{customer['customer_id']}/deactivate", headers=admin)
    assert deactivated.status == 200 and deactivated.json()["active"] is False
    me = api.get(f"{V1}/auth/me", headers=bearer(access_token))
    assert me.status == 403 and me.json()["code"] == "CustomerInactive"
    refused = api.post(f"{V1}/auth/token", content_type=FORM, data=urlencode(
        {"grant_type": "client_credentials", "client_id": customer["client_id"],
         "client_secret": customer["client_secret"]}).encode())
    assert refused.status == 400 and refused.json()["error"] == "invalid_grant"
    # the openEO API refuses the token too, at once in this container
    openeo = {"Authorization": f"Bearer basic//{access_token}"}
    for path in ("/openeo/1.2/jobs", "/openeo/1.2/result"):
        refused_openeo = api.post(path, headers=openeo, json_body=GRAPH)
        assert refused_openeo.status == 403 and refused_openeo.json()["code"] == "TokenInvalid", path
    reactivated = api.patch(f"{V1}/crm/customers/{customer['customer_id']}", headers=admin,
                            json_body={"active": True})
    assert reactivated.status == 200 and reactivated.json()["active"] is True
    # tokens issued before the deactivation stay revoked; new ones work
    assert api.get(f"{V1}/auth/me", headers=bearer(access_token)).json()["code"] == "TokenInvalid"
    assert api.post("/openeo/1.2/jobs", headers=openeo, json_body=GRAPH).status == 403
    fresh = client_token(api, customer)
    assert api.get(f"{V1}/auth/me", headers=bearer(fresh)).status == 200
    assert api.post("/openeo/1.2/jobs", headers={"Authorization": f"Bearer basic//{fresh}"},
                    json_body=GRAPH).status == 201


def test_tokens_issued_before_a_password_reset_are_refused(api_ses):
    api = api_ses
    customer = register(api)
    old = token(api, grant_type="password", username="ann@example.org", password=PASSWORD)["access_token"]
    api.post(f"{V1}/auth/password-reset", json_body={"email": "ann@example.org"})
    reset_token = re.search(r"Reset token: (\S+)", outbox()[-1].body).group(1)
    assert api.post(f"{V1}/auth/password-reset/confirm", json_body={
        "email": "ann@example.org", "token": reset_token, "new_password": "a-new-password"}).status == 200
    assert api.get(f"{V1}/auth/me", headers=bearer(old)).json()["code"] == "TokenInvalid"
    assert api.post("/openeo/1.2/jobs", headers={"Authorization": f"Bearer basic//{old}"},
                    json_body=GRAPH).json()["code"] == "TokenInvalid"
    new = token(api, grant_type="password", username="ann@example.org", password="a-new-password")["access_token"]
    assert api.get(f"{V1}/auth/me", headers=bearer(new)).json()["customer_id"] == customer["customer_id"]


def test_lockout_after_wrong_passwords(api):
    customer = register(api)
    wrong = urlencode({"grant_type": "password", "username": "ann@example.org", "password": "wrong-password"})
    failures, _ = resources.LOGIN_FAILURES_BEFORE_LOCKOUT
    for _ in range(failures):
        assert api.post(f"{V1}/auth/token", content_type=FORM, data=wrong.encode()).status == 400
    right = urlencode({"grant_type": "password", "username": "ann@example.org", "password": PASSWORD})
    locked = api.post(f"{V1}/auth/token", content_type=FORM, data=right.encode())
    assert locked.status == 429 and locked.json()["code"] == "TooManyRequests" and "retry-after" in locked.headers
    # an unknown name is answered alike
    unknown = urlencode({"grant_type": "password", "username": "nobody@example.org", "password": "wrong-password"})
    for _ in range(failures):
        assert api.post(f"{V1}/auth/token", content_type=FORM, data=unknown.encode()).status == 400
    assert api.post(f"{V1}/auth/token", content_type=FORM, data=unknown.encode()).status == 429
    # the client secret is a different account name: its grant still works
    assert client_token(api, customer)
    # openEO basic login locks out alike
    basic = "Basic " + base64.b64encode(f"{customer['customer_id']}:wrong".encode()).decode()
    for _ in range(failures):
        assert api.get("/openeo/1.2/credentials/basic", headers={"Authorization": basic}).status == 403
    good = "Basic " + base64.b64encode(f"{customer['customer_id']}:{PASSWORD}".encode()).decode()
    locked_openeo = api.get("/openeo/1.2/credentials/basic", headers={"Authorization": good})
    assert locked_openeo.status == 429 and locked_openeo.json()["code"] == "TooManyRequests"


def test_password_reset_by_email(api_ses):
    api = api_ses
    register(api)
    outbox = ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
    before = len(outbox)
    known = api.post(f"{V1}/auth/password-reset", json_body={"email": "ANN@example.org"})
    unknown = api.post(f"{V1}/auth/password-reset", json_body={"email": "nobody@example.org"})
    assert known.status == unknown.status == 202 and known.json() == unknown.json()
    assert len(outbox) == before + 1
    message = outbox[-1]
    assert message.destinations["ToAddresses"] == ["ann@example.org"]
    assert message.source == api.settings.notification_sender
    reset_token = re.search(r"Reset token: (\S+)", message.body).group(1)
    assert "http://testserver/api/v1/auth/password-reset/confirm" in message.body

    wrong = api.post(f"{V1}/auth/password-reset/confirm",
                     json_body={"email": "ann@example.org", "token": "nope", "new_password": "a-new-password"})
    assert wrong.status == 400 and wrong.json()["code"] == "PasswordResetInvalid"
    done = api.post(f"{V1}/auth/password-reset/confirm",
                    json_body={"email": "ann@example.org", "token": reset_token, "new_password": "a-new-password"})
    assert done.status == 200
    assert token(api, grant_type="password", username="ann@example.org", password="a-new-password")
    old = api.post(f"{V1}/auth/token", content_type=FORM, data=urlencode(
        {"grant_type": "password", "username": "ann@example.org", "password": PASSWORD}).encode())
    assert old.status == 400


def test_password_reset_answers_the_same_without_a_verified_sender(api):
    register(api)
    assert api.post(f"{V1}/auth/password-reset", json_body={"email": "ann@example.org"}).status == 202


def test_crm_is_for_admins_only(api):
    customer = register(api)
    customer_bearer = bearer(client_token(api, customer))
    cid = customer["customer_id"]
    for method, path, body in [
        ("GET", "/crm/customers", None), ("GET", f"/crm/customers/{cid}", None),
        ("PATCH", f"/crm/customers/{cid}", {"name": "x"}), ("POST", f"/crm/customers/{cid}/deactivate", None),
        ("GET", f"/crm/customers/{cid}/orders", None), ("GET", f"/crm/customers/{cid}/usage", None),
        ("POST", "/auth/scopes", {"customer_id": cid, "scope": "admin"}),
        ("DELETE", f"/auth/scopes/{cid}/service:ndvi-composite", None),
    ]:
        response = api.request(method, V1 + path, headers=customer_bearer, json_body=body)
        assert response.status == 403 and response.json()["code"] == "ScopeMissing", (method, path)
        assert "admin" in response.json()["message"]
        assert api.request(method, V1 + path, json_body=body).status == 401
    # openEO accounts have no scopes either
    openeo_user = api.request("GET", V1 + "/crm/customers", headers={"Authorization": api.tokens["alice"]})
    assert openeo_user.status == 403


def test_admin_manages_customers_and_scopes(api):
    admin = bearer(admin_token(api))
    customers = [register(api, email=f"c{i}@example.org", name=f"C{i}") for i in range(3)]
    first = api.get(f"{V1}/crm/customers?limit=2", headers=admin).json()
    assert len(first["customers"]) == 2 and first["next"]
    assert first["links"][0]["rel"] == "next" and "after=" in first["links"][0]["href"]
    rest = api.get(f"{V1}/crm/customers?limit=2&after={first['next']}", headers=admin).json()
    listed = {c["customer_id"] for c in first["customers"] + rest["customers"]}
    more = rest
    while more["next"]:
        more = api.get(f"{V1}/crm/customers?limit=2&after={more['next']}", headers=admin).json()
        listed |= {c["customer_id"] for c in more["customers"]}
    assert {c["customer_id"] for c in customers} <= listed and "alice" not in listed
    by_email = api.get(f"{V1}/crm/customers?email=C1@example.org", headers=admin).json()
    assert [c["email"] for c in by_email["customers"]] == ["c1@example.org"]
    assert api.get(f"{V1}/crm/customers?after=garbage", headers=admin).status == 400

    cid = customers[0]["customer_id"]
    shown = api.get(f"{V1}/crm/customers/{cid}", headers=admin).json()
    assert shown["email"] == "c0@example.org" and "client_secret" not in shown
    assert api.get(f"{V1}/crm/customers/cus-missing", headers=admin).json()["code"] == "CustomerNotFound"
    assert api.get(f"{V1}/crm/customers/alice", headers=admin).status == 404  # an openEO user, not a customer
    patched = api.patch(f"{V1}/crm/customers/{cid}", headers=admin, json_body={
        "name": "Renamed", "usage_limits": {"ndvi-composite": {"limit": 3, "interval_s": 86400}}}).json()
    assert patched["name"] == "Renamed" and patched["usage_limits"]["ndvi-composite"]["limit"] == 3

    customer_bearer = bearer(client_token(api, customers[0]))
    revoked = api.delete(f"{V1}/auth/scopes/{cid}/service:ndvi-composite", headers=admin)
    assert revoked.status == 200 and "service:ndvi-composite" not in revoked.json()["scopes"]
    assert "service:ndvi-composite" not in api.get(f"{V1}/auth/me", headers=customer_bearer).json()["scopes"]
    granted = api.post(f"{V1}/auth/scopes", headers=admin, json_body={"customer_id": cid, "scope": "logging"})
    assert granted.status == 200 and "logging" in granted.json()["scopes"]
    bad = api.post(f"{V1}/auth/scopes", headers=admin, json_body={"customer_id": cid, "scope": "root"})
    assert bad.status == 400
    missing = api.post(f"{V1}/auth/scopes", headers=admin, json_body={"customer_id": "cus-x", "scope": "logging"})
    assert missing.status == 404

    orders = api.get(f"{V1}/crm/customers/{cid}/orders", headers=admin).json()
    assert orders == {"orders": [], "links": [], "next": None}
    usage = api.get(f"{V1}/crm/customers/{cid}/usage", headers=admin).json()
    assert usage["orders"] == 0
    assert usage["services"] == [{"service_id": "ndvi-composite", "orders": 0, "usage_limit": {
        "limit": 3, "interval_s": 86400, "orders_in_interval": 0}}]


def test_customer_token_works_on_the_openeo_api(api):
    customer = register(api)
    access_token = client_token(api, customer)
    me = api.get("/openeo/1.2/me", headers={"Authorization": f"Bearer basic//{access_token}"})
    assert me.status == 200 and me.json()["user_id"] == customer["customer_id"] and me.json()["name"] == "Ann"
    # and openEO basic login with the client id and the password
    basic = base64.b64encode(f"{customer['customer_id']}:{PASSWORD}".encode()).decode()
    assert api.get("/openeo/1.2/credentials/basic", headers={"Authorization": f"Basic {basic}"}).status == 200
    # an openEO token works on the order API, too
    assert api.get(f"{V1}/auth/me", headers={"Authorization": api.tokens["alice"]}).json()["customer_id"] == "alice"


def test_admin_sees_a_customers_orders_with_order_statuses(api):
    from stratus.events import utcnow
    from stratus.store.models import JobModel

    customer = register(api)
    cid = customer["customer_id"]
    now = utcnow()
    for job_id, status, error_code in [("o-1", "finished", None), ("o-2", "error", "NoDataAvailable")]:
        JobModel(job_id, user_id=cid, process={"process_graph": {}}, status=status, created=now, updated=now,
                 service_id="ndvi-composite", error_code=error_code).save()
    admin = bearer(admin_token(api))
    orders = api.get(f"{V1}/crm/customers/{cid}/orders", headers=admin).json()["orders"]
    assert {o["order_id"]: o["status"] for o in orders} == {"o-1": "SUCCESS", "o-2": "INVALID"}
    assert orders[0]["links"][0]["href"].startswith("http://testserver/api/v1/orders/")
    usage = api.get(f"{V1}/crm/customers/{cid}/usage", headers=admin).json()
    assert usage["services"] == [{"service_id": "ndvi-composite", "orders": 2, "usage_limit": None}]


def test_the_openapi_fragment_is_valid_and_documents_every_route(api):
    import json
    import re as regex
    import sys

    from openapi_spec_validator import validate

    from tests.support import REPO_ROOT

    document = json.loads((REPO_ROOT / "functions/api/openapi/order_auth_crm.json").read_text())
    validate(document)
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    served = {(method, regex.sub(r"<(\w+)>", r"{\1}", key[0]))
              for area in ("routers.orders.auth", "routers.orders.crm")
              for key in sys.modules[area].router._routes for method in key[1]}
    assert documented == served
    assert document["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]["tokenUrl"] \
        == "/api/v1/auth/token"
