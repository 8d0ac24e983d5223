"""Order-service customers: registration, OAuth2 grants, principals, password resets and the CRM,
against the real tables in an in-process emulator (e-mail captured in memory)."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta

import jwt
import pytest

from stratus import admin, resources
from stratus.domain.auth import AuthService
from stratus.domain.customers import CustomerService
from stratus.domain.limits import RateLimiter
from stratus.domain.principal import CallerResolver
from stratus.events import utcnow
from stratus.order_errors import (
    AuthenticationRequiredException,
    CustomerExistsException,
    CustomerInactiveException,
    CustomerNotFoundException,
    InvalidClientException,
    InvalidGrantException,
    InvalidRequestException,
    PasswordResetInvalidException,
    RegistrationClosedException,
    RegistrationTokenInvalidException,
    TokenInvalidException,
    TooManyRequestsException,
    UnsupportedGrantTypeException,
)
from stratus.store.accounts import DynamoAccountRepository
from stratus.store.customers import DynamoCustomerOrders
from stratus.store.limits import DynamoCounterStore, DynamoPendingRegistrations
from stratus.store.models import JobModel, UserModel

from tests.support import api_module

KEY = "k" * 48
PASSWORD = "a-good-password"
http_basic_client = api_module("routers.orders.auth").http_basic_client
basic_credentials = api_module("routers.openeo.credentials").basic_credentials


def order_caller(authorization):
    """The caller as the order API sees it (`routers/orders/caller.py`), over the real users table."""
    resolve = api_module("routers.orders.caller").resolve_order_caller
    return resolve(CallerResolver(DynamoAccountRepository(), lambda: KEY), authorization)


def openeo_user(authorization):
    """The caller's id as the openEO API sees it (`routers/openeo/caller.py`)."""
    resolve = api_module("routers.openeo.caller").resolve_openeo_caller
    return resolve(CallerResolver(DynamoAccountRepository(), lambda: KEY), authorization).user_id


class Outbox:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = fail

    def send(self, to: str, subject: str, body: str) -> str:
        if self.fail:
            raise RuntimeError("MessageRejected")
        self.sent.append((to, subject, body))
        return f"m-{len(self.sent)}"


@pytest.fixture
def outbox():
    return Outbox()


CLIENT = "203.0.113.9"


class Clock:
    """Time for the rate limiter, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_service(outbox, registration="verify", clock=None) -> CustomerService:
    service = CustomerService(DynamoAccountRepository(), DynamoCustomerOrders(), lambda: KEY, 600, lambda: outbox,
                              pending=DynamoPendingRegistrations(),
                              limiter=RateLimiter(DynamoCounterStore(), clock=clock or Clock()),
                              registration=registration, default_scopes=resources.DEFAULT_CUSTOMER_SCOPES)
    service.test_outbox = outbox
    return service


@pytest.fixture
def service(tables, outbox):
    return make_service(outbox)


def verification_token(body: str) -> str:
    return re.search(r"Verification token: (\S+)", body).group(1)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def register(service, email="Ann@Example.org", name="Ann"):
    """register -> the verification e-mail -> verify, as a new customer does."""
    outbox = service.test_outbox
    service.register(name, email, PASSWORD, client=CLIENT)
    token = verification_token(outbox.sent[-1][2])
    outbox.sent.clear()
    return service.verify_registration(token)


# --- registration ----------------------------------------------------------------------------


def test_register_stores_hashes_and_default_scopes(service):
    customer, secret = register(service)
    assert customer.customer_id.startswith("cus-") and customer.email == "ann@example.org"
    item = UserModel.get(customer.customer_id)
    assert item.client_secret_hash.startswith("$argon2id$") and secret not in item.client_secret_hash
    assert item.password_hash.startswith("$argon2id$") and PASSWORD not in item.password_hash
    assert sorted(item.scopes) == sorted(resources.DEFAULT_CUSTOMER_SCOPES) and item.active
    described = customer.describe()
    assert described["client_id"] == customer.customer_id
    assert not any("hash" in key or "secret" in key for key in described)


def test_a_taken_email_gets_the_same_answer_and_its_owner_a_notice(service, outbox):
    register(service)
    assert service.register("Other", "ANN@example.org", "another-password", client=CLIENT) is None
    (to, _, body), = outbox.sent
    assert to == "ann@example.org" and "has an account already" in body and "Verification token" not in body
    assert len(service.list_customers(10, email="ann@example.org")[0]) == 1


def test_a_verification_token_works_once(service, outbox):
    service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT)
    token = verification_token(outbox.sent[-1][2])
    assert UserModel.count() == 0  # nothing is made before the address is verified
    customer, secret = service.verify_registration(token)
    assert customer.active and secret
    for wrong in (token, token + "x", "", None):
        with pytest.raises(RegistrationTokenInvalidException):
            service.verify_registration(wrong)


def test_verifying_a_second_registration_of_one_address_makes_no_second_account(service, outbox):
    service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT)
    service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT)  # before either is verified
    first, second = (verification_token(body) for _, _, body in outbox.sent)
    service.verify_registration(first)
    with pytest.raises(CustomerExistsException):
        service.verify_registration(second)


def test_approval_mode_makes_verified_customers_inactive(tables, outbox):
    service = make_service(outbox, registration="approval")
    service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT)
    assert "administrator then approves" in outbox.sent[-1][2]
    customer, secret = service.verify_registration(verification_token(outbox.sent[-1][2]))
    assert not customer.active
    form = {"client_id": customer.customer_id, "client_secret": secret}
    with pytest.raises(InvalidGrantException):
        service.issue_token("client_credentials", form)
    service.update(customer.customer_id, {"active": True})  # an admin approves
    assert service.issue_token("client_credentials", form)


def test_closed_mode_takes_no_registrations(tables, outbox):
    service = make_service(outbox, registration="closed")
    with pytest.raises(RegistrationClosedException):
        service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT)
    assert outbox.sent == []


def test_registrations_are_rate_limited_per_client_and_per_address(service):
    for i in range(10):
        service.register("A", f"a{i}@example.org", PASSWORD, client="198.51.100.1")
    with pytest.raises(TooManyRequestsException) as refused:
        service.register("A", "a10@example.org", PASSWORD, client="198.51.100.1")
    assert 0 < refused.value.params["retry_after_s"] <= 3600
    for i in range(3):
        service.register("B", "b@example.org", PASSWORD, client=f"198.51.100.{10 + i}")
    with pytest.raises(TooManyRequestsException):
        service.register("B", "B@example.org", PASSWORD, client="198.51.100.20")


@pytest.mark.parametrize("name,email,password", [
    ("", "a@example.org", PASSWORD), ("Ann", "not-an-email", PASSWORD), ("Ann", "a@example.org", "short"),
    ("Ann", "a@example.org", None), (None, "a@example.org", PASSWORD),
])
def test_register_validates(service, name, email, password):
    with pytest.raises(InvalidRequestException):
        service.register(name, email, password, client=CLIENT)


# --- tokens ----------------------------------------------------------------------------------


def test_client_credentials_grant_from_the_form_and_from_http_basic(service):
    customer, secret = register(service)
    for form, header in [({"client_id": customer.customer_id, "client_secret": secret}, None),
                         ({}, basic(customer.customer_id, secret))]:
        token = service.issue_token("client_credentials", form, http_basic_client(header))
        assert token["token_type"] == "Bearer" and token["expires_in"] == 600
        assert token["scope"].split() == sorted(resources.DEFAULT_CUSTOMER_SCOPES)
        principal = order_caller(f"Bearer {token['access_token']}")
        assert principal.user_id == customer.customer_id and principal.email == "ann@example.org"
        assert principal.scopes == frozenset(resources.DEFAULT_CUSTOMER_SCOPES) and not principal.is_admin


def test_password_grant_with_the_email(service):
    customer, _ = register(service)
    token = service.issue_token("password", {"username": "ANN@example.org", "password": PASSWORD})
    assert order_caller(f"Bearer {token['access_token']}").user_id == customer.customer_id


@pytest.mark.parametrize("grant,form,error", [
    ("client_credentials", {"client_id": "cus-unknown", "client_secret": "x"}, InvalidClientException),
    ("client_credentials", {}, InvalidClientException),
    ("password", {"username": "ann@example.org", "password": "wrong-password"}, InvalidGrantException),
    ("password", {"username": "nobody@example.org", "password": PASSWORD}, InvalidGrantException),
    ("password", {"username": "ann@example.org"}, InvalidRequestException),
    ("authorization_code", {}, UnsupportedGrantTypeException),
    (None, {}, InvalidRequestException),
])
def test_grant_refusals(service, grant, form, error):
    register(service)
    with pytest.raises(error):
        service.issue_token(grant, form)


def test_wrong_client_secret(service):
    customer, secret = register(service)
    with pytest.raises(InvalidClientException):
        service.issue_token("client_credentials", {"client_id": customer.customer_id, "client_secret": secret + "x"})


def test_openeo_users_are_not_oauth_clients(service):
    AuthService(DynamoAccountRepository(), lambda: KEY, 60).create_user("alice", PASSWORD)
    with pytest.raises(InvalidClientException):
        service.issue_token("client_credentials", {"client_id": "alice", "client_secret": PASSWORD})


def test_inactive_customers_get_no_token_and_their_tokens_stop_working(service):
    customer, secret = register(service)
    form = {"client_id": customer.customer_id, "client_secret": secret}
    bearer = "Bearer " + service.issue_token("client_credentials", form)["access_token"]
    service.deactivate(customer.customer_id)
    with pytest.raises(InvalidGrantException) as refused:
        service.issue_token("client_credentials", form)
    assert "deactivated" in refused.value.message
    with pytest.raises(InvalidGrantException):
        service.issue_token("password", {"username": "ann@example.org", "password": PASSWORD})
    with pytest.raises(CustomerInactiveException):
        order_caller(bearer)
    service.update(customer.customer_id, {"active": True})
    with pytest.raises(TokenInvalidException):  # deactivation revoked it for good
        order_caller(bearer)
    fresh = "Bearer " + service.issue_token("client_credentials", form)["access_token"]
    assert order_caller(fresh).user_id == customer.customer_id


def test_a_password_reset_and_a_new_secret_revoke_earlier_tokens(service, outbox):
    customer, secret = register(service)
    form = {"client_id": customer.customer_id, "client_secret": secret}
    before = "Bearer " + service.issue_token("client_credentials", form)["access_token"]
    auth = AuthService(DynamoAccountRepository(), lambda: KEY, 60)
    service.request_password_reset("ann@example.org")
    service.confirm_password_reset("ann@example.org", _token_from(outbox.sent[-1][2]), "a-new-password")
    with pytest.raises(TokenInvalidException):
        order_caller(before)
    from stratus.errors import TokenInvalidException as OpenEOTokenInvalid
    with pytest.raises(OpenEOTokenInvalid):
        openeo_user(before.replace("Bearer ", "Bearer basic//"))
    after_reset = "Bearer " + service.issue_token("client_credentials", form)["access_token"]
    assert order_caller(after_reset).user_id == customer.customer_id
    service.rotate_client_secret(customer.customer_id)
    with pytest.raises(TokenInvalidException):
        order_caller(after_reset)


def test_lockout_after_repeated_wrong_passwords_refuses_the_right_one_too(tables, outbox):
    clock = Clock()
    service = make_service(outbox, clock=clock)
    register(service)
    wrong = {"username": "ann@example.org", "password": "wrong-password"}
    for _ in range(5):
        with pytest.raises(InvalidGrantException):
            service.issue_token("password", wrong)
    right = {"username": "ann@example.org", "password": PASSWORD}
    with pytest.raises(TooManyRequestsException) as locked:
        service.issue_token("password", right)
    # an unknown name locks the same way: the answer tells nothing about which names exist
    for _ in range(5):
        with pytest.raises(InvalidGrantException):
            service.issue_token("password", {"username": "nobody@example.org", "password": "x" * 10})
    with pytest.raises(TooManyRequestsException) as unknown:
        service.issue_token("password", {"username": "nobody@example.org", "password": "x" * 10})
    assert locked.value.code == unknown.value.code and locked.value.message.split(";")[0] == \
        unknown.value.message.split(";")[0]
    clock.now += locked.value.params["retry_after_s"]  # the window passes
    assert service.issue_token("password", right)


def test_a_requested_scope_narrows_the_token(service):
    customer, secret = register(service)
    token = service.issue_token("client_credentials", {"client_id": customer.customer_id, "client_secret": secret,
                                                       "scope": "service:ndvi-composite admin"})
    assert token["scope"] == "service:ndvi-composite"  # admin is not held: not granted
    assert order_caller(f"Bearer {token['access_token']}").scopes == {"service:ndvi-composite"}


def test_tokens_are_openeo_tokens_of_the_same_deployment(service):
    customer, secret = register(service)
    token = service.issue_token("client_credentials", {"client_id": customer.customer_id, "client_secret": secret})
    auth = AuthService(DynamoAccountRepository(), lambda: KEY, 60)
    assert openeo_user(f"Bearer basic//{token['access_token']}") == customer.customer_id
    # and openEO-style headers work on the order API
    assert order_caller(f"Bearer basic//{token['access_token']}").user_id == customer.customer_id


def test_openeo_basic_login_refuses_deactivated_customers(service):
    customer, _ = register(service)
    auth = AuthService(DynamoAccountRepository(), lambda: KEY, 60)
    assert auth.issue_basic_token(*basic_credentials(basic(customer.customer_id, PASSWORD)))
    service.deactivate(customer.customer_id)
    from stratus.errors import CredentialsInvalidException
    with pytest.raises(CredentialsInvalidException):
        auth.issue_basic_token(*basic_credentials(basic(customer.customer_id, PASSWORD)))


@pytest.mark.parametrize("header,error", [
    (None, AuthenticationRequiredException),
    ("Basic abc", AuthenticationRequiredException),
    ("Bearer not-a-jwt", TokenInvalidException),
    ("Bearer " + jwt.encode({"sub": "cus-x", "iss": "stratus", "exp": 9999999999}, "other-key" * 6,
                            algorithm="HS256"), TokenInvalidException),
])
def test_bad_authorization_headers(service, header, error):
    with pytest.raises(error):
        order_caller(header)


def test_expired_tokens_and_deleted_customers_are_refused(service):
    customer, _ = register(service)
    expired = jwt.encode({"sub": customer.customer_id, "iss": "stratus", "exp": utcnow() - timedelta(seconds=5)},
                         KEY, algorithm="HS256")
    with pytest.raises(TokenInvalidException):
        order_caller(f"Bearer {expired}")
    gone = jwt.encode({"sub": "cus-deleted", "iss": "stratus", "exp": utcnow() + timedelta(minutes=5)},
                      KEY, algorithm="HS256")
    with pytest.raises(TokenInvalidException):
        order_caller(f"Bearer {gone}")


# --- scopes ----------------------------------------------------------------------------------


def test_grant_and_revoke_apply_to_existing_tokens(service):
    customer, secret = register(service)
    bearer = "Bearer " + service.issue_token("client_credentials", {"client_id": customer.customer_id,
                                                                    "client_secret": secret})["access_token"]
    service.revoke_scope(customer.customer_id, "service:ndvi-composite")
    assert not order_caller(bearer).may_order("ndvi-composite")
    service.grant_scope(customer.customer_id, "admin")
    service.grant_scope(customer.customer_id, "admin")  # idempotent
    principal = order_caller(bearer)
    assert principal.is_admin and sorted(service.get(customer.customer_id).scopes).count("admin") == 1
    service.revoke_scope(customer.customer_id, "service:not-held")  # no-op


@pytest.mark.parametrize("scope", ["", "root", "service:", "service:bad id", 7])
def test_invalid_scopes(service, scope):
    customer, _ = register(service)
    with pytest.raises(InvalidRequestException):
        service.grant_scope(customer.customer_id, scope)


# --- password reset --------------------------------------------------------------------------


def _token_from(body: str) -> str:
    return re.search(r"Reset token: (\S+)", body).group(1)


def test_password_reset_round_trip(service, outbox):
    customer, _ = register(service)
    service.request_password_reset("ANN@example.org", confirm_url="https://x/api/v1/auth/password-reset/confirm")
    (to, subject, body), = outbox.sent
    assert to == "ann@example.org" and "reset" in subject.lower()
    token = _token_from(body)
    assert token not in (UserModel.get(customer.customer_id).password_reset_hash or "")
    service.confirm_password_reset("ann@example.org", token, "a-new-password")
    assert service.issue_token("password", {"username": "ann@example.org", "password": "a-new-password"})
    with pytest.raises(InvalidGrantException):
        service.issue_token("password", {"username": "ann@example.org", "password": PASSWORD})
    with pytest.raises(PasswordResetInvalidException):  # a token works once
        service.confirm_password_reset("ann@example.org", token, "another-password")


def test_password_reset_for_unknown_emails_is_silent(service, outbox):
    service.request_password_reset("nobody@example.org")
    assert outbox.sent == []


def test_password_reset_refuses_wrong_and_expired_tokens(service, outbox):
    customer, _ = register(service)
    service.request_password_reset("ann@example.org")
    token = _token_from(outbox.sent[0][2])
    with pytest.raises(PasswordResetInvalidException):
        service.confirm_password_reset("ann@example.org", token + "x", "a-new-password")
    with pytest.raises(PasswordResetInvalidException):
        service.confirm_password_reset("other@example.org", token, "a-new-password")
    UserModel(customer.customer_id).update(
        actions=[UserModel.password_reset_expires.set(utcnow() - timedelta(seconds=1))])
    with pytest.raises(PasswordResetInvalidException):
        service.confirm_password_reset("ann@example.org", token, "a-new-password")
    with pytest.raises(InvalidRequestException):
        service.confirm_password_reset("ann@example.org", token, "short")


def test_a_failing_mail_server_does_not_change_the_answer(tables):
    service = make_service(Outbox(fail=True))
    assert service.register("Ann", "ann@example.org", PASSWORD, client=CLIENT) is None  # logged, not raised
    service.create_customer("Ann", "ann@example.org", PASSWORD)
    service.request_password_reset("ann@example.org")  # logged, not raised


# --- CRM -------------------------------------------------------------------------------------


def test_list_pages_through_customers_only(service):
    AuthService(DynamoAccountRepository(), lambda: KEY, 60).create_user("alice", PASSWORD)  # not a customer
    ids = {register(service, email=f"c{i}@example.org")[0].customer_id for i in range(5)}
    seen, after, pages = [], None, 0
    while True:
        customers, after = service.list_customers(2, after)
        assert len(customers) <= 2
        seen += [c.customer_id for c in customers]
        pages += 1
        if after is None:
            break
    assert sorted(seen) == sorted(ids) and pages >= 3
    found, next_token = service.list_customers(10, email="C3@example.org")
    assert [c.email for c in found] == ["c3@example.org"] and next_token is None
    with pytest.raises(InvalidRequestException):
        service.list_customers(2, "bm90LWEtdG9rZW4=")


def test_update_validates_and_merges_usage_limits(service):
    customer, _ = register(service)
    register(service, email="taken@example.org")
    updated = service.update(customer.customer_id, {
        "name": "Ann B", "email": "Ann.B@example.org",
        "usage_limits": {"ndvi-composite": {"limit": 5, "interval_s": 86400}}})
    assert updated.name == "Ann B" and updated.email == "ann.b@example.org"
    updated = service.update(customer.customer_id, {"usage_limits": {
        "zonal-statistics": {"limit": 1, "interval_s": 60}, "ndvi-composite": None}})
    assert updated.usage_limits == {"zonal-statistics": {"limit": 1, "interval_s": 60}}
    assert service.update(customer.customer_id, {"usage_limits": None}).usage_limits == {}
    assert service.issue_token("password", {"username": "ann.b@example.org", "password": PASSWORD})
    for bad in [{"email": "taken@example.org"}, {"scopes": ["admin"]}, {"active": "no"},
                {"usage_limits": {"x": {"limit": -1, "interval_s": 60}}}, {"usage_limits": [1]}]:
        with pytest.raises((InvalidRequestException, CustomerExistsException)):
            service.update(customer.customer_id, bad)
    with pytest.raises(CustomerNotFoundException):
        service.update("cus-missing", {"name": "x"})


def _order(user_id: str, job_id: str, service_id: str | None, age_s: int) -> None:
    created = utcnow() - timedelta(seconds=age_s)
    JobModel(job_id, user_id=user_id, process={"process_graph": {}}, created=created, updated=created,
             service_id=service_id).save()


def test_orders_and_usage(service):
    customer, _ = register(service)
    service.update(customer.customer_id, {"usage_limits": {"ndvi-composite": {"limit": 2, "interval_s": 3600}}})
    _order(customer.customer_id, "o1", "ndvi-composite", 7200)
    _order(customer.customer_id, "o2", "ndvi-composite", 60)
    _order(customer.customer_id, "o3", "zonal-statistics", 30)
    _order(customer.customer_id, "j1", None, 10)  # an openEO job, not an order
    _order("someone-else", "o4", "ndvi-composite", 10)

    orders, after = service.orders(customer.customer_id, 2)
    assert [o.order_id for o in orders] == ["o3", "o2"] and after
    more, after = service.orders(customer.customer_id, 2, after)
    assert [o.order_id for o in more] == ["o1"]
    assert service.count_orders(customer.customer_id, "ndvi-composite") == 2
    assert service.count_orders(customer.customer_id, "ndvi-composite", since=utcnow() - timedelta(hours=1)) == 1

    usage = service.usage(customer.customer_id)
    assert usage["orders"] == 3
    by_service = {s["service_id"]: s for s in usage["services"]}
    assert by_service["ndvi-composite"]["orders"] == 2
    assert by_service["ndvi-composite"]["usage_limit"] == {"limit": 2, "interval_s": 3600, "orders_in_interval": 1}
    assert by_service["zonal-statistics"] == {"service_id": "zonal-statistics", "orders": 1, "usage_limit": None}
    with pytest.raises(CustomerNotFoundException):
        service.usage("alice")


# --- admins ----------------------------------------------------------------------------------


def test_ensure_admin_creates_then_resets(service):
    customer_id, secret = service.ensure_admin("Admin@example.org", "admin-password")
    principal = order_caller("Bearer " + service.issue_token(
        "client_credentials", {"client_id": customer_id, "client_secret": secret})["access_token"])
    assert principal.is_admin
    service.deactivate(customer_id)
    again, new_secret = service.ensure_admin("admin@example.org", "admin-password-2")
    assert again == customer_id and new_secret != secret
    with pytest.raises(InvalidClientException):
        service.issue_token("client_credentials", {"client_id": customer_id, "client_secret": secret})
    assert service.issue_token("password", {"username": "admin@example.org", "password": "admin-password-2"})


def test_admin_command_creates_an_admin_customer(tables, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert admin.main(["create-customer", "ops@example.org", "--admin"]) == 0
    out = capsys.readouterr().out
    client_id = re.search(r"client_id: (\S+)", out).group(1)
    assert re.search(r"client_secret: (\S+)", out)
    item = UserModel.get(client_id)
    assert "admin" in item.scopes and item.email == "ops@example.org" and "a-long-password-1" not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert admin.main(["create-customer", "ops@example.org"]) == 1  # exists already
