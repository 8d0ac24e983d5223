"""Order-service accounts: `/auth/register`, the OAuth2 token endpoint `/auth/token`, password
resets, `/auth/me`, and the admins' scope grants (`/auth/scopes`). Mounted under `/api/v1`.

Secrets and passwords are never logged: only customer ids and outcomes are.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.orders.context import NO_STORE, order_json_body, order_url, require_admin
from routers.shared.caller import caller, public
from routers.shared.context import backend, client_address, header
from stratus.order_errors import (
    CustomerNotFoundException,
    InvalidClientException,
    InvalidRequestException,
    OrderServiceException,
)

router = Router()

_RFC6749_ERROR = {"InvalidRequest": "invalid_request"}  # the other token errors use RFC 6749 names as codes


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body),
                    headers=headers)


_REGISTERED = ("If the registration can be accepted, a verification e-mail has been sent to the address. "
               "Send its token to POST /api/v1/auth/register/verify to get your client id and secret.")


@router.post("/auth/register")
@public
def register() -> Response:
    """The same answer for every well-formed registration, whether the address is new or taken."""
    body = order_json_body(router)
    backend().customers.register(body.get("name"), body.get("email"), body.get("password"),
                                 client=client_address(router),
                                 verify_url=f"{order_url(router)}/auth/register/verify")
    return _json(202, {"message": _REGISTERED})


@router.post("/auth/register/verify")
@public
def verify_registration() -> Response:
    body = order_json_body(router)
    customer, secret = backend().customers.verify_registration(body.get("token"))
    return _json(201, {**customer.describe(), "client_secret": secret}, headers=NO_STORE)


def _token_parameters() -> dict[str, Any]:
    """The token request's parameters: `application/x-www-form-urlencoded` (RFC 6749) or a JSON object."""
    content_type = (header(router, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return order_json_body(router)
    try:
        raw = router.current_event.decoded_body or ""
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestException(reason="the request body is not form-urlencoded text") from None
    pairs = parse_qsl(raw, keep_blank_values=False)
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidRequestException(reason=f"parameters given more than once: {', '.join(repeated)}")
    return dict(pairs)


@router.post("/auth/token")
@public
def issue_token() -> Response:
    """RFC 6749 token endpoint. Errors carry the usual `{id, code, message, links}` and, for OAuth2
    client libraries, RFC 6749's `error` and `error_description`."""
    authorization = header(router, "Authorization")
    try:
        params = _token_parameters()
        token = backend().customers.issue_token(params.get("grant_type"), params, http_basic_client(authorization))
    except OrderServiceException as error:
        body = {**error.to_dict(), "error": _RFC6749_ERROR.get(error.code, error.code),
                "error_description": error.message}
        headers = dict(NO_STORE)
        if error.params.get("retry_after_s") is not None:
            headers["Retry-After"] = str(error.params["retry_after_s"])
        if isinstance(error, InvalidClientException) and authorization \
                and authorization.strip().lower().startswith("basic"):
            headers["WWW-Authenticate"] = 'Basic realm="stratus"'
        return _json(error.status_code, body, headers=headers)
    return _json(200, token, headers=NO_STORE)


def http_basic_client(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret sent as HTTP Basic (RFC 6749 2.3.1: each form-urlencoded before base64); None
    without Basic credentials (then they are the form's `client_id` and `client_secret`)."""
    if not authorization or not authorization.strip().lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization.strip()[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClientException() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClientException()
    return unquote_plus(client_id), unquote_plus(secret)


@router.post("/auth/password-reset")
@public
def request_password_reset() -> Response:
    body = order_json_body(router)
    backend().customers.request_password_reset(body.get("email"),
                                               confirm_url=f"{order_url(router)}/auth/password-reset/confirm",
                                               client=client_address(router))
    return _json(202, {"message": "If a customer with this e-mail exists, a reset token has been sent to it. "
                                  "It is valid for one hour."})


@router.post("/auth/password-reset/confirm")
@public
def confirm_password_reset() -> Response:
    body = order_json_body(router)
    backend().customers.confirm_password_reset(body.get("email"), body.get("token"), body.get("new_password"))
    return _json(200, {"message": "The password has been changed."})


@router.get("/auth/me")
def describe_me() -> dict:
    """The caller's own account (any valid token); `scopes` are those in effect for this token."""
    principal = caller(router)
    try:
        account = backend().customers.get(principal.user_id).describe()
    except CustomerNotFoundException:  # an openEO account calling with its openEO token
        account = {"customer_id": principal.user_id, "client_id": None, "name": principal.name,
                   "email": principal.email, "active": True, "usage_limits": {}, "created": None}
    return {**account, "scopes": sorted(principal.scopes)}


@router.get("/auth/webhook-secret")
def get_webhook_secret() -> Response:
    """The caller's key for checking the signature of order webhooks (`X-Stratus-Signature`)."""
    from stratus.domain.webhooks import SIGNATURE_HEADER, customer_webhook_secret

    principal = caller(router)
    secret = customer_webhook_secret(backend().signing_key(), principal.user_id)
    return _json(200, {"webhook_secret": secret, "algorithm": "HMAC-SHA256", "header": SIGNATURE_HEADER,
                       "format": "sha256=<hex digest of the raw request body>"}, NO_STORE)


@router.post("/auth/scopes")
def grant_scope() -> dict:
    require_admin(router)
    body = order_json_body(router)
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise InvalidRequestException(reason="`customer_id` is required")
    return backend().customers.grant_scope(customer_id, body.get("scope")).describe()


@router.delete("/auth/scopes/<customer_id>/<scope>")
def revoke_scope(customer_id: str, scope: str) -> dict:
    require_admin(router)
    return backend().customers.revoke_scope(customer_id, scope).describe()
