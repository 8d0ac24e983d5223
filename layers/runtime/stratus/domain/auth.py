"""Accounts and tokens: basic-auth credentials exchanged for short-lived signed bearer tokens, and
access tokens of an OpenID Connect provider (Amazon Cognito).

Implements openEO `GET /credentials/basic`, `GET /credentials/oidc` and the bearer check every
protected endpoint makes (`Authorization: Bearer basic//<token>` or `Bearer oidc/<provider>/<token>`).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Callable, Protocol

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stratus.errors import (
    AuthenticationRequiredException,
    AuthenticationSchemeInvalidException,
    CredentialsInvalidException,
    PermissionsInsufficientException,
    TokenInvalidException,
    TooManyRequestsException,
)
from stratus.domain.limits import LimitReached, Rate, RateLimiter
from stratus.events import utcnow

_ISSUER = "stratus"
MAX_USER_ID_BYTES = 256  # login names; DynamoDB partition keys end at 2048 bytes
ACCOUNT_CHECK_TTL_S = 10.0  # how long an API container trusts its last read of an account
_ALGORITHM = "HS256"
_hasher = PasswordHasher()  # argon2id with the library's OWASP-aligned defaults


@cache
def _dummy_hash() -> str:
    """Verifying against this when a user is unknown costs the same time as a real check, so response
    times don't reveal which user names exist. Made on first use: hashing at import would slow cold starts."""
    return _hasher.hash(secrets.token_hex(16))


@dataclass
class User:
    user_id: str
    password_hash: str
    name: str | None = None
    email: str | None = None
    roles: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=utcnow)
    active: bool = True  # order-service customers can be deactivated; then no token of theirs works
    scopes: list[str] = field(default_factory=list)  # order-service customers' scopes
    is_customer: bool = False  # an order-service customer (it has a client secret)
    token_version: int = 0  # the generation of the account's tokens (claim `tv`)


class UserRepository(Protocol):
    def get(self, user_id: str) -> User | None: ...

    def add(self, user: User) -> bool: ...

    def update_password_hash(self, user_id: str, password_hash: str) -> None: ...


class AccessTokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, expiry, token use and client are checked;
        raises `TokenInvalidException` otherwise."""
        ...


@dataclass(frozen=True)
class OidcProvider:
    """One entry of `GET /credentials/oidc`, with the verifier for its access tokens."""

    id: str
    issuer: str
    title: str
    scopes: list[str]
    verifier: AccessTokenVerifier
    default_clients: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"id": self.id, "issuer": self.issuer, "title": self.title,
                                       "scopes": self.scopes}
        if self.default_clients:
            description["default_clients"] = self.default_clients
        return description


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Checks a password or client secret against its argon2 hash. Without a hash (unknown account) it
    verifies against a dummy hash, so the answer takes as long as for a known one."""
    try:
        _hasher.verify(stored_hash or _dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        return False
    return bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    """True when a verified hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(stored_hash)


def sign_token(signing_key: str, subject: str, lifetime: timedelta, **claims: Any) -> str:
    """A bearer token of this deployment (HS256, issuer "stratus"): what `AuthService.authenticate`
    accepts as `Bearer basic//<token>` and the order-service API as `Bearer <token>`."""
    now = utcnow()
    payload = {**claims, "sub": subject, "iss": _ISSUER, "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, signing_key, algorithm=_ALGORITHM)


def decode_token(signing_key: str, token: str) -> dict[str, Any] | None:
    """The claims of a token made by `sign_token`, or None if it is forged, expired or malformed."""
    try:
        return jwt.decode(token, signing_key, algorithms=[_ALGORITHM], issuer=_ISSUER,
                          options={"require": ["exp", "sub", "iss"]})
    except jwt.PyJWTError:
        return None


def token_scopes(claims: dict[str, Any], account_scopes: list[str]) -> set[str]:
    """The scopes in effect for a token: the account's, narrowed by the token's `scope` claim if any."""
    scopes = set(account_scopes)
    if isinstance(claims.get("scope"), str):
        scopes &= set(claims["scope"].split())
    return scopes


def current_generation(claims: dict[str, Any], token_version: int) -> bool:
    """Whether a token is of the account's current generation; tokens without `tv` are generation 0."""
    version = claims.get("tv", 0)
    return isinstance(version, int) and not isinstance(version, bool) and version == token_version


class AuthService:
    def __init__(self, users: UserRepository, signing_key: Callable[[], str], token_lifetime_s: int,
                 oidc_providers: list[OidcProvider] | None = None, *, limiter: RateLimiter | None = None,
                 login_rate: Rate = Rate(60, 60), lockout: Rate = Rate(5, 900)) -> None:
        self._users = users
        self._limiter = limiter  # None: no login rate limit or lockout (tests of other things)
        self._login_rate = login_rate
        self._lockout = lockout
        self._signing_key = signing_key  # fetched lazily: only requests that need it pay for the secret
        self._lifetime = timedelta(seconds=token_lifetime_s)
        self._oidc = {provider.id: provider for provider in oidc_providers or []}
        self._known_oidc_users: set[str] = set()  # per container: one conditional write per user, not per request
        self._accounts: dict[str, tuple[float, User | None]] = {}  # user id -> (re-read after, account)

    def oidc_providers(self) -> list[dict[str, Any]]:
        """GET /credentials/oidc."""
        return [provider.describe() for provider in self._oidc.values()]

    def create_user(self, user_id: str, password: str, name: str | None = None, roles: list[str] | None = None) -> bool:
        return self._users.add(User(user_id=user_id, password_hash=hash_password(password), name=name,
                                    roles=roles or []))

    def issue_basic_token(self, authorization: str | None) -> str:
        """GET /credentials/basic. Raises `CredentialsInvalidException` on a wrong user or password, and
        `TooManyRequestsException` past the login rate of a user name or while it is locked out after
        repeated wrong passwords (alike for names that do not exist; a right password is refused too)."""
        user_id, password = _parse_basic(authorization)
        self._guard_login(user_id)
        user = self._users.get(user_id)
        if not verify_secret(user.password_hash if user else None, password) or not user.active:
            if self._limiter is not None:
                self._limiter.record_failure("login-failure", user_id, self._lockout)
            raise CredentialsInvalidException()
        if needs_rehash(user.password_hash):
            self._users.update_password_hash(user.user_id, hash_password(password))
        return sign_token(self._signing_key(), user.user_id, self._lifetime, tv=user.token_version)

    def _guard_login(self, user_id: str) -> None:
        if self._limiter is None:
            return
        try:
            self._limiter.hit("login", user_id, self._login_rate)
            self._limiter.check_lockout("login-failure", user_id, self._lockout)
        except LimitReached as reached:
            raise TooManyRequestsException(retry_after_s=reached.retry_after_s) from None

    def forget_account(self, user_id: str) -> None:
        """Drops this container's cached read of an account that was just changed here."""
        self._accounts.pop(user_id, None)

    def describe_user(self, user_id: str) -> User:
        """The account behind an authenticated user id (GET /me)."""
        user = self._users.get(user_id)
        if user is None:  # deleted after the token was issued
            raise TokenInvalidException()
        return user

    def authenticate(self, authorization: str | None) -> str:
        """The user id behind an openEO bearer token; raises the openEO auth errors otherwise."""
        if not authorization:
            raise AuthenticationRequiredException()
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise AuthenticationSchemeInvalidException()
        credentials = credentials.strip()
        if credentials.startswith("oidc/"):
            return self._authenticate_oidc(credentials)
        method, _, token = credentials.partition("//")
        if method != "basic" or not token:
            raise AuthenticationSchemeInvalidException()
        claims = decode_token(self._signing_key(), token)
        if claims is None:
            raise TokenInvalidException()
        self._check_account(claims)
        return claims["sub"]

    def _check_account(self, claims: dict[str, Any]) -> None:
        """The account behind a token must still exist and be active; an order-service customer must hold a
        scope (a token narrowed to none holds none): scopes are what a customer is allowed to process with.
        Accounts are re-read at most every `ACCOUNT_CHECK_TTL_S` seconds per container, so a deactivation
        takes effect within that time on every API container."""
        user_id = claims["sub"]
        now = time.monotonic()
        cached = self._accounts.get(user_id)
        if cached is None or cached[0] <= now:
            cached = (now + ACCOUNT_CHECK_TTL_S, self._users.get(user_id))
            self._accounts[user_id] = cached
        user = cached[1]
        if user is None or not user.active:
            raise TokenInvalidException(message="This account does not exist or is deactivated.")
        if not current_generation(claims, user.token_version):
            raise TokenInvalidException(message="This token was revoked (deactivation, password reset or new "
                                                "client secret); get a new one.")
        if user.is_customer:
            scopes = token_scopes(claims, user.scopes)
            if not scopes:
                raise PermissionsInsufficientException(
                    message="This token holds no scope; the openEO API needs one (see GET /api/v1/auth/scopes).")

    def _authenticate_oidc(self, credentials: str) -> str:
        _, provider_id, token = credentials.split("/", 2) if credentials.count("/") >= 2 else ("", "", "")
        provider = self._oidc.get(provider_id)
        if provider is None or not token:
            raise AuthenticationSchemeInvalidException(
                message=f"Unknown OpenID Connect provider '{provider_id}': see GET /credentials/oidc.")
        claims = provider.verifier.verify(token)
        user_id = oidc_user_id(claims)
        if user_id not in self._known_oidc_users:
            # an OIDC account exists once it logs in; its name is the login name or the machine client's id
            self._users.add(User(user_id=user_id, password_hash="",
                                 name=claims.get("username") or claims.get("client_id")))
            self._known_oidc_users.add(user_id)
        return user_id


def oidc_user_id(claims: dict[str, Any]) -> str:
    """Cognito's `sub` is the stable identity (a UUID for people, the app client id for machines)."""
    return claims["sub"]


def _parse_basic(authorization: str | None) -> tuple[str, str]:
    if not authorization:
        raise AuthenticationRequiredException()
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationSchemeInvalidException()
    try:
        user_id, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsInvalidException() from None
    if not sep or not 0 < len(user_id.encode()) <= MAX_USER_ID_BYTES:  # never a key DynamoDB refuses
        raise CredentialsInvalidException()
    return user_id, password
