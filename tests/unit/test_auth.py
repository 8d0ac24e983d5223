"""Basic credentials are exchanged for signed, expiring bearer tokens."""

import base64

import jwt
import pytest

from stratus.domain.auth import AuthService
from stratus.errors import (
    AuthenticationRequiredException,
    AuthenticationSchemeInvalidException,
    CredentialsInvalidException,
    TokenInvalidException,
)
from stratus.store.models import UserModel
from stratus.store.users import DynamoUserRepository

KEY = "k" * 48


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def auth(tables):
    service = AuthService(DynamoUserRepository(), lambda: KEY, token_lifetime_s=60)
    assert service.create_user("alice", "correct horse")
    return service


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
