"""Accounts: `GET /credentials/basic` exchanges user and password for a bearer token;
`GET /credentials/oidc` lists the OpenID Connect providers whose access tokens are accepted."""

from __future__ import annotations

import base64
import binascii

from routers.shared.caller import PublicRouter
from routers.shared.context import backend, header
from stratus.errors import (
    AuthenticationRequiredException,
    AuthenticationSchemeInvalidException,
    CredentialsInvalidException,
)

router = PublicRouter()


@router.get("/credentials/basic")
def get_basic_token() -> dict:
    user_id, password = basic_credentials(header(router, "Authorization"))
    return {"access_token": backend().auth.issue_basic_token(user_id, password)}


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """User and password of `Authorization: Basic <base64 of user:password>`."""
    if not authorization:
        raise AuthenticationRequiredException()
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationSchemeInvalidException()
    try:
        user_id, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsInvalidException() from None
    if not sep:
        raise CredentialsInvalidException()
    return user_id, password


@router.get("/credentials/oidc")
def list_oidc_providers() -> dict:
    return {"providers": backend().auth.oidc_providers()}
