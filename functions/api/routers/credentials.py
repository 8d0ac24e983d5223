"""Accounts: `GET /credentials/basic` exchanges user and password for a bearer token;
`GET /credentials/oidc` lists the OpenID Connect providers whose access tokens are accepted."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.context import backend

router = Router()


@router.get("/credentials/basic")
def get_basic_token() -> dict:
    headers = router.current_event.headers or {}
    authorization = headers.get("Authorization") or headers.get("authorization")
    return {"access_token": backend().auth.issue_basic_token(authorization)}


@router.get("/credentials/oidc")
def list_oidc_providers() -> dict:
    return {"providers": backend().auth.oidc_providers()}
