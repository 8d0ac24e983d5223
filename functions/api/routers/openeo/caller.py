"""The openEO API's caller policy: `Authorization: Bearer basic//<token>` (a token of
`GET /credentials/basic` or of the order API's token endpoint) or `Bearer oidc/<provider>/<access token>`,
and the openEO errors a refusal becomes."""

from __future__ import annotations

from typing import Callable

from routers.shared.context import backend
from stratus.domain.principal import (
    CallerRefused,
    CallerResolver,
    Credential,
    OidcAccessToken,
    Principal,
    Refusal,
    SignedToken,
)
from stratus.errors import (
    AuthenticationRequiredException,
    AuthenticationSchemeInvalidException,
    OpenEOApiException,
    PermissionsInsufficientException,
    TokenInvalidException,
)


def openeo_credential(authorization: str | None) -> Credential:
    if not authorization:
        raise AuthenticationRequiredException()
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise AuthenticationSchemeInvalidException()
    credentials = credentials.strip()
    if credentials.startswith("oidc/"):
        _, provider_id, token = credentials.split("/", 2) if credentials.count("/") >= 2 else ("", "", "")
        if not token:
            raise _unknown_provider(provider_id)
        return OidcAccessToken(provider_id, token)
    method, _, token = credentials.partition("//")
    if method != "basic" or not token:
        raise AuthenticationSchemeInvalidException()
    return SignedToken(token)


def _unknown_provider(provider_id: str) -> OpenEOApiException:
    return AuthenticationSchemeInvalidException(
        message=f"Unknown OpenID Connect provider '{provider_id}': see GET /credentials/oidc.")


_GONE = "This account does not exist or is deactivated."
_REFUSALS: dict[Refusal, Callable[[Credential], OpenEOApiException]] = {
    Refusal.TOKEN_INVALID: lambda _: TokenInvalidException(),
    Refusal.ACCOUNT_GONE: lambda _: TokenInvalidException(message=_GONE),
    Refusal.ACCOUNT_INACTIVE: lambda _: TokenInvalidException(message=_GONE),
    Refusal.TOKEN_REVOKED: lambda _: TokenInvalidException(
        message="This token was revoked (deactivation, password reset or new client secret); get a new one."),
    Refusal.UNKNOWN_PROVIDER: lambda credential: _unknown_provider(getattr(credential, "provider_id", "")),
}


def resolve_openeo_caller(callers: CallerResolver, authorization: str | None) -> Principal:
    """The caller; the account is re-read at most every `ACCOUNT_CHECK_TTL_S` per container. An
    order-service customer must hold a scope (a token narrowed to none holds none)."""
    try:
        principal = callers.resolve(openeo_credential(authorization))
    except CallerRefused as refused:
        raise _REFUSALS[refused.refusal](refused.credential) from None
    if not principal.may_use_openeo:
        raise PermissionsInsufficientException(
            message="This token holds no scope; the openEO API needs one (see GET /api/v1/auth/scopes).")
    return principal


def openeo_caller(authorization: str | None) -> Principal:
    return resolve_openeo_caller(backend().callers, authorization)
