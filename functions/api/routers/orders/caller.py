"""The order API's caller policy: `Authorization: Bearer <access token>` (the openEO form
`Bearer basic//<token>` works too), and the order-service errors a refusal becomes. The account is read
on every request, so deactivations and scope changes apply at once."""

from __future__ import annotations

from typing import Callable

from routers.shared.context import backend
from stratus.domain.principal import CallerRefused, CallerResolver, Principal, Refusal, SignedToken
from stratus.order_errors import (
    AuthenticationRequiredException,
    CustomerInactiveException,
    OrderServiceException,
    TokenInvalidException,
)


def order_credential(authorization: str | None) -> SignedToken:
    if not authorization or not authorization.strip():
        raise AuthenticationRequiredException()
    scheme, _, credentials = authorization.strip().partition(" ")
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationRequiredException(message="Use `Authorization: Bearer <access_token>`.")
    return SignedToken(token.removeprefix("basic//"))


_REFUSALS: dict[Refusal, Callable[[], OrderServiceException]] = {
    Refusal.TOKEN_INVALID: TokenInvalidException,
    Refusal.ACCOUNT_GONE: TokenInvalidException,
    Refusal.ACCOUNT_INACTIVE: CustomerInactiveException,
    Refusal.TOKEN_REVOKED: lambda: TokenInvalidException(
        message="The bearer token was revoked (deactivation, password reset or new client secret); get a new one."),
}


def resolve_order_caller(callers: CallerResolver, authorization: str | None) -> Principal:
    try:
        return callers.resolve(order_credential(authorization), max_account_age_s=0)
    except CallerRefused as refused:
        raise _REFUSALS[refused.refusal]() from None


def order_caller(authorization: str | None) -> Principal:
    return resolve_order_caller(backend().callers, authorization)
