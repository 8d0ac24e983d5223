"""Basic credentials are exchanged for signed, expiring bearer tokens; the openEO API's caller policy
(`routers/openeo/caller.py`) reads them back."""

import base64

import jwt
import pytest

from stratus.domain.auth import AuthService
from stratus.domain.principal import CallerResolver
from stratus.errors import (
    AuthenticationRequiredException,
    AuthenticationSchemeInvalidException,
    CredentialsInvalidException,
    TokenInvalidException,
)
from stratus.store.accounts import DynamoAccountRepository
from stratus.store.models import UserModel

from tests.support import api_module

KEY = "k" * 48
resolve_openeo_caller = api_module("routers.openeo.caller").resolve_openeo_caller
basic_credentials = api_module("routers.openeo.credentials").basic_credentials


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class OpenEOLogin:
    """Login (`AuthService`) and the openEO API's caller policy over the real users table."""

    def __init__(self, oidc_providers=None):
        self.service = AuthService(DynamoAccountRepository(), lambda: KEY, token_lifetime_s=60,
                                   oidc_providers=oidc_providers)
        self.callers = CallerResolver(DynamoAccountRepository(), lambda: KEY,
                                      {p.id: p.verifier for p in oidc_providers or []})

    def __getattr__(self, name):
        return getattr(self.service, name)

    def issue_basic_token(self, authorization):
        return self.service.issue_basic_token(*basic_credentials(authorization))

    def authenticate(self, authorization):
        return resolve_openeo_caller(self.callers, authorization).user_id


@pytest.fixture
def auth(tables):
    login = OpenEOLogin()
    assert login.create_user("alice", "correct horse")
    return login


def test_password_is_stored_hashed(auth):
    stored = UserModel.get("alice").password_hash
    assert "correct horse" not in stored and stored.startswith("$argon2id$")


def test_token_round_trip(auth):
    token = auth.issue_basic_token(basic("alice", "correct horse"))
    assert auth.authenticate(f"Bearer basic//{token}") == "alice"


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "correct horse")])
def test_wrong_credentials(auth, user, password):
    with pytest.raises(CredentialsInvalidException):
        auth.issue_basic_token(basic(user, password))


def test_creating_an_existing_user_fails(auth):
    assert not auth.create_user("alice", "other")


@pytest.mark.parametrize("header,error", [
    (None, AuthenticationRequiredException),
    ("Basic abc", AuthenticationSchemeInvalidException),
    ("Bearer oidc//x", AuthenticationSchemeInvalidException),
    ("Bearer basic//not-a-jwt", TokenInvalidException),
])
def test_bad_bearer_headers(auth, header, error):
    with pytest.raises(error):
        auth.authenticate(header)


def test_expired_and_forged_tokens_are_refused(auth):
    import datetime as dt
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    expired = jwt.encode({"sub": "alice", "iss": "stratus", "iat": past, "exp": past + dt.timedelta(hours=1)}, KEY,
                         algorithm="HS256")
    forged = jwt.encode({"sub": "alice", "iss": "stratus", "exp": past + dt.timedelta(hours=5)}, "other-key" * 6,
                        algorithm="HS256")
    for token in (expired, forged):
        with pytest.raises(TokenInvalidException):
            auth.authenticate(f"Bearer basic//{token}")


class StubVerifier:
    """Stands in for the JWKS verifier (tested against the emulator in tests/integration/test_oidc_tokens.py)."""

    def __init__(self, claims_by_token):
        self.claims_by_token = claims_by_token

    def verify(self, token):
        if token not in self.claims_by_token:
            raise TokenInvalidException()
        return self.claims_by_token[token]


@pytest.fixture
def oidc_auth(tables):
    from stratus.domain.auth import OidcProvider

    verifier = StubVerifier({"t1": {"sub": "machine-1", "client_id": "machine-1", "token_use": "access"}})
    provider = OidcProvider(id="cognito", issuer="https://issuer.example/pool", title="Pool", scopes=["openid"],
                            verifier=verifier)
    return OpenEOLogin(oidc_providers=[provider])


def test_an_oidc_token_names_its_subject_and_creates_the_account_once(oidc_auth):
    assert oidc_auth.authenticate("Bearer oidc/cognito/t1") == "machine-1"
    assert oidc_auth.authenticate("Bearer oidc/cognito/t1") == "machine-1"
    account = oidc_auth.describe_user("machine-1")
    assert account.name == "machine-1"
    assert oidc_auth.oidc_providers() == [{"id": "cognito", "issuer": "https://issuer.example/pool",
                                           "title": "Pool", "scopes": ["openid"]}]


def test_an_oidc_account_cannot_log_in_with_a_password(oidc_auth):
    oidc_auth.authenticate("Bearer oidc/cognito/t1")
    with pytest.raises(CredentialsInvalidException):
        oidc_auth.issue_basic_token(basic("machine-1", ""))


@pytest.mark.parametrize("header,error", [
    ("Bearer oidc/keycloak/t1", AuthenticationSchemeInvalidException),
    ("Bearer oidc/cognito/", AuthenticationSchemeInvalidException),
    ("Bearer oidc/cognito", AuthenticationSchemeInvalidException),
    ("Bearer oidc/cognito/t2", TokenInvalidException),
])
def test_bad_oidc_bearers(oidc_auth, header, error):
    with pytest.raises(error):
        oidc_auth.authenticate(header)


def test_production_hashes_at_the_library_defaults():
    """The tests swap in a cheap hasher (tests/conftest.py); a fresh copy of the module shows what runs in
    production: argon2id with argon2-cffi's own (OWASP-aligned) parameters."""
    import importlib.util

    from argon2 import PasswordHasher, Type

    spec = importlib.util.find_spec("stratus.domain.auth")
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    defaults = PasswordHasher()
    hasher = fresh._password_hasher()
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.type) == \
        (defaults.time_cost, defaults.memory_cost, defaults.parallelism, Type.ID)
    assert defaults.memory_cost >= 19 * 1024  # OWASP's floor for argon2id: 19 MiB
