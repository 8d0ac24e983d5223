"""Who calls, for both APIs: a `Principal`, resolved once per request from the credential the API layer
parsed out of the `Authorization` header.

The account behind a token is re-read (at most `ACCOUNT_CHECK_TTL_S` old, or fresh), so deactivating a
customer, revoking its tokens or a scope takes effect without waiting for tokens to expire. Refusals are
`CallerRefused` with a `Refusal`: each API answers them with its own error codes and format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Mapping, Protocol, Sequence

from stratus.domain.accounts import Account, AccountRepository
from stratus.domain.auth import current_generation, decode_token, token_scopes

ADMIN_SCOPE = "admin"
LOGGING_SCOPE = "logging"  # components and clients that may write log entries for any order
SERVICE_SCOPE_PREFIX = "service:"
ACCOUNT_CHECK_TTL_S = 10.0  # how long an API container trusts its last read of an account (openEO API)
MAX_USER_ID_CHARS = 256  # longer subjects are never ours; DynamoDB keys end at 2048 bytes


def service_scope(service_id: str) -> str:
    return f"{SERVICE_SCOPE_PREFIX}{service_id}"


@dataclass(frozen=True)
class Principal:
    user_id: str
    scopes: frozenset[str] = frozenset()  # in effect for this request: the account's, narrowed by the token
    email: str | None = None
    name: str | None = None
    is_customer: bool = False

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    @property
    def may_use_openeo(self) -> bool:
        """Plain openEO and OIDC accounts always; customers only while they (and their token) hold a scope:
        scopes are what a customer is allowed to process with."""
        return not self.is_customer or bool(self.scopes)

    def may_order(self, service_id: str) -> bool:
        return self.is_admin or service_scope(service_id) in self.scopes

    def may_see(self, owner_id: str) -> bool:
        """Customers see their own orders, products and logs; admins see all."""
        return self.is_admin or owner_id == self.user_id


# --- credentials (what the API layer parses out of `Authorization`) --------------------------


@dataclass(frozen=True)
class SignedToken:
    """A bearer token this deployment signed (openEO `Bearer basic//<token>`, order API `Bearer <token>`)."""

    token: str


@dataclass(frozen=True)
class OidcAccessToken:
    """An access token of an OpenID Connect provider (openEO `Bearer oidc/<provider>/<token>`)."""

    provider_id: str
    token: str


Credential = SignedToken | OidcAccessToken


class Refusal(Enum):
    TOKEN_INVALID = "forged, expired or malformed"
    ACCOUNT_GONE = "the account does not exist"
    ACCOUNT_INACTIVE = "the account is deactivated"
    TOKEN_REVOKED = "the token is of an earlier generation (deactivation, password reset, new client secret)"
    UNKNOWN_PROVIDER = "no OpenID Connect provider of this id"


class CallerRefused(Exception):
    def __init__(self, refusal: Refusal, credential: Credential) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.credential = credential


class AccessTokenVerifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, expiry, token use and client are checked; raises the
        openEO `TokenInvalidException` otherwise."""
        ...


class CallerResolver:
    def __init__(self, accounts: AccountRepository, signing_key: Callable[[], str],
                 oidc_verifiers: Mapping[str, AccessTokenVerifier] | None = None,
                 verification_keys: Callable[[bool], Sequence[str]] | None = None) -> None:
        """`verification_keys(refresh)`: the keys a token may be signed with (during a rotation the previous key
        too), re-read when `refresh`; without it only `signing_key` verifies."""
        self._accounts = accounts
        self._signing_key = signing_key  # fetched lazily: only requests with a signed token pay for the secret
        self._verification_keys = verification_keys
        self._oidc = dict(oidc_verifiers or {})
        self._known_oidc_users: set[str] = set()  # per container: one conditional write per user, not per request
        self._read: dict[str, tuple[float, Account | None]] = {}  # user id -> (read at, account)

    def resolve(self, credential: Credential, max_account_age_s: float | None = None) -> Principal:
        """The caller behind a credential. `max_account_age_s`: how old this container's read of the
        account may be (None: `ACCOUNT_CHECK_TTL_S`; 0: read it now)."""
        if isinstance(credential, OidcAccessToken):
            return self._oidc_subject(credential)
        claims = self._verified_claims(credential.token)
        subject = claims.get("sub") if claims else None
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_USER_ID_CHARS:
            raise CallerRefused(Refusal.TOKEN_INVALID, credential)
        account = self._account(subject, ACCOUNT_CHECK_TTL_S if max_account_age_s is None else max_account_age_s)
        if account is None:
            raise CallerRefused(Refusal.ACCOUNT_GONE, credential)
        if not account.active:
            raise CallerRefused(Refusal.ACCOUNT_INACTIVE, credential)
        if not current_generation(claims, account.token_version):
            raise CallerRefused(Refusal.TOKEN_REVOKED, credential)
        return Principal(user_id=account.user_id, scopes=frozenset(token_scopes(claims, account.scopes)),
                         email=account.email, name=account.name, is_customer=account.is_customer)

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        if self._verification_keys is None:
            return decode_token(self._signing_key(), token)
        tried: set[str] = set()
        for refresh in (False, True):  # then once more with a fresh read: the token may be newer than our keys
            for key in self._verification_keys(refresh):
                if key not in tried:
                    tried.add(key)
                    claims = decode_token(key, token)
                    if claims is not None:
                        return claims
        return None

    def forget_account(self, user_id: str) -> None:
        """Drops this container's read of an account that was just changed here."""
        self._read.pop(user_id, None)

    def _account(self, user_id: str, max_age_s: float) -> Account | None:
        now = time.monotonic()
        read = self._read.get(user_id)
        if read is None or now - read[0] >= max_age_s:
            read = (now, self._accounts.get(user_id))
            self._read[user_id] = read
        return read[1]

    def _oidc_subject(self, credential: OidcAccessToken) -> Principal:
        verifier = self._oidc.get(credential.provider_id)
        if verifier is None:
            raise CallerRefused(Refusal.UNKNOWN_PROVIDER, credential)
        claims = verifier.verify(credential.token)
        user_id = oidc_user_id(claims)
        name = claims.get("username") or claims.get("client_id")
        if user_id not in self._known_oidc_users:
            # an OIDC account exists once it logs in; its name is the login name or the machine client's id
            self._accounts.add(Account(user_id=user_id, password_hash="", name=name))
            self._known_oidc_users.add(user_id)
        return Principal(user_id=user_id, name=name)


def oidc_user_id(claims: dict[str, Any]) -> str:
    """Cognito's `sub` is the stable identity (a UUID for people, the app client id for machines)."""
    return claims["sub"]
