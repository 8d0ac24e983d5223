"""Passwords, tokens and logins: argon2 hashes, the deployment's signed bearer tokens, openEO basic
login (`GET /credentials/basic`) and the OpenID Connect providers (`GET /credentials/oidc`).

Who is behind a token on a request is `stratus.domain.principal`; parsing the `Authorization` header is
the API layer's part.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Callable

from stratus.domain.accounts import Account, AccountRepository
from stratus.domain.limits import LimitReached, Rate, RateLimiter
from stratus.errors import CredentialsInvalidException, TokenInvalidException, TooManyRequestsException
from stratus.events import utcnow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from stratus.domain.principal import AccessTokenVerifier

# pyjwt (which loads `cryptography`) and argon2 are imported where they are used: together about a third of
# the API function's own import time, and its first request to the public routes needs neither.

_ISSUER = "stratus"
MAX_USER_ID_BYTES = 256  # login names; DynamoDB partition keys end at 2048 bytes
_ALGORITHM = "HS256"
_hasher: PasswordHasher | None = None  # made on first use (`_password_hasher`); the tests set a cheap one


def _password_hasher() -> PasswordHasher:
    """argon2id with the library's OWASP-aligned defaults."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


@cache
def _dummy_hash() -> str:
    """Verifying against this when a user is unknown costs the same time as a real check, so response
    times don't reveal which user names exist. Made on first use: hashing at import would slow cold starts."""
    return _password_hasher().hash(secrets.token_hex(16))


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
    return _password_hasher().hash(password)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Checks a password or client secret against its argon2 hash. Without a hash (unknown account) it
    verifies against a dummy hash, so the answer takes as long as for a known one."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        _password_hasher().verify(stored_hash or _dummy_hash(), secret)
    except (VerificationError, InvalidHashError):
        return False
    return bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    """True when a verified hash was made with weaker parameters than the current ones."""
    return _password_hasher().check_needs_rehash(stored_hash)


def sign_token(signing_key: str, subject: str, lifetime: timedelta, **claims: Any) -> str:
    """A bearer token of this deployment (HS256, issuer "stratus"): what the openEO API accepts as
    `Bearer basic//<token>` and the order-service API as `Bearer <token>` (`CallerResolver`)."""
    import jwt

    now = utcnow()
    payload = {**claims, "sub": subject, "iss": _ISSUER, "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, signing_key, algorithm=_ALGORITHM)


def decode_token(signing_key: str, token: str) -> dict[str, Any] | None:
    """The claims of a token made by `sign_token`, or None if it is forged, expired or malformed."""
    import jwt

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
    def __init__(self, accounts: AccountRepository, signing_key: Callable[[], str], token_lifetime_s: int,
                 oidc_providers: list[OidcProvider] | None = None, *, limiter: RateLimiter | None = None,
                 login_rate: Rate = Rate(60, 60), lockout: Rate = Rate(5, 900)) -> None:
        self._accounts = accounts
        self._limiter = limiter  # None: no login rate limit or lockout (tests of other things)
        self._login_rate = login_rate
        self._lockout = lockout
        self._signing_key = signing_key  # fetched lazily: only requests that need it pay for the secret
        self._lifetime = timedelta(seconds=token_lifetime_s)
        self._oidc = list(oidc_providers or [])

    def oidc_providers(self) -> list[dict[str, Any]]:
        """GET /credentials/oidc."""
        return [provider.describe() for provider in self._oidc]

    def create_user(self, user_id: str, password: str, name: str | None = None, roles: list[str] | None = None) -> bool:
        return self._accounts.add(Account(user_id=user_id, password_hash=hash_password(password), name=name,
                                          roles=roles or []))

    def issue_basic_token(self, user_id: str, password: str) -> str:
        """GET /credentials/basic. Raises `CredentialsInvalidException` on a wrong user or password, and
        `TooManyRequestsException` past the login rate of a user name or while it is locked out after
        repeated wrong passwords (alike for names that do not exist; a right password is refused too)."""
        if not 0 < len(user_id.encode("utf-8", "surrogatepass")) <= MAX_USER_ID_BYTES:
            raise CredentialsInvalidException()  # never a key DynamoDB refuses
        self._guard_login(user_id)
        account = self._accounts.get(user_id)
        if not verify_secret(account.password_hash if account else None, password) or not account.active:
            if self._limiter is not None:
                self._limiter.record_failure("login-failure", user_id, self._lockout)
            raise CredentialsInvalidException()
        if needs_rehash(account.password_hash):
            self._accounts.update(account.user_id, {"password_hash": hash_password(password)})
        return sign_token(self._signing_key(), account.user_id, self._lifetime, tv=account.token_version)

    def _guard_login(self, user_id: str) -> None:
        if self._limiter is None:
            return
        try:
            self._limiter.hit("login", user_id, self._login_rate)
            self._limiter.check_lockout("login-failure", user_id, self._lockout)
        except LimitReached as reached:
            raise TooManyRequestsException(retry_after_s=reached.retry_after_s) from None

    def describe_user(self, user_id: str) -> Account:
        """The account behind an authenticated user id (GET /me)."""
        account = self._accounts.get(user_id)
        if account is None:  # deleted after the token was issued
            raise TokenInvalidException()
        return account
