"""Cognito access-token verification (the production code path) against the emulator's Cognito:
real HTTP for discovery, JWKS and the local OAuth2 token endpoint."""

from __future__ import annotations

import time

import boto3
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from stratus.adapters.oidc import CognitoAccessTokenVerifier
from stratus.errors import TokenInvalidException
from stratus_local import moto_seams
from stratus_local.cognito_oauth import CognitoOAuthEndpoints, _moto_signing_key
from stratus_local.provision import _create_user_pool

REGION = "eu-central-1"


class CountingRequests:
    """Counts requests that reach the emulator per path suffix (to see what the verifier caches)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, app):
        def counted(environ, start_response):
            self.paths.append(environ.get("PATH_INFO", ""))
            return app(environ, start_response)
        return counted


@pytest.fixture(scope="module")
def cognito():
    counter = CountingRequests()
    holder = {}
    server, url = moto_seams.start_moto_server(middlewares=(
        lambda app: CognitoOAuthEndpoints(app, lambda: holder["idp"]), counter))
    idp = boto3.client("cognito-idp", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    holder["idp"] = idp
    clients = _create_user_pool(idp)
    other_client = idp.create_user_pool_client(
        UserPoolId=clients.user_pool_id, ClientName="not-ours", GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["stratus/openeo"])["UserPoolClient"]
    issuer = f"{url}/{clients.user_pool_id}"
    yield {"issuer": issuer, "clients": clients, "other": other_client, "counter": counter}
    server.stop()


def _token(issuer: str, client_id: str, secret: str, **extra) -> requests.Response:
    return requests.post(f"{issuer}/oauth2/token", data={"grant_type": "client_credentials", **extra},
                         auth=(client_id, secret), timeout=10)


def test_a_client_credentials_token_verifies_and_the_keys_are_fetched_once(cognito):
    clients, issuer = cognito["clients"], cognito["issuer"]
    verifier = CognitoAccessTokenVerifier(issuer, [clients.machine_client_id])
    # the openeo client asks for `openid` too: only the custom scope is granted, as Cognito does
    response = _token(issuer, clients.machine_client_id, clients.machine_client_secret,
                      scope="openid stratus/openeo")
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    before = len(cognito["counter"].paths)
    claims = verifier.verify(token)
    assert claims["client_id"] == claims["sub"] == clients.machine_client_id
    assert claims["scope"] == "stratus/openeo"
    for _ in range(3):
        verifier.verify(token)
    fetched = cognito["counter"].paths[before:]
    assert [p.rsplit("/", 1)[-1] for p in fetched] == ["openid-configuration", "jwks.json"]


def test_tokens_of_other_clients_and_issuers_are_refused(cognito):
    clients, issuer = cognito["clients"], cognito["issuer"]
    other = cognito["other"]
    token = _token(issuer, other["ClientId"], other["ClientSecret"]).json()["access_token"]
    # same pool, but an app client the API does not accept
    with pytest.raises(TokenInvalidException):
        CognitoAccessTokenVerifier(issuer, [clients.machine_client_id]).verify(token)
    # a verifier for another issuer
    foreign = CognitoAccessTokenVerifier(issuer.rsplit("/", 1)[0] + "/eu-central-1_other", [other["ClientId"]])
    with pytest.raises(TokenInvalidException):
        foreign.verify(token)


def _signed(claims: dict, key=None) -> str:
    moto_key, kid = _moto_signing_key()
    return jwt.encode(claims, key or moto_key, algorithm="RS256", headers={"kid": kid})


def test_expired_forged_and_id_tokens_are_refused(cognito):
    clients, issuer = cognito["clients"], cognito["issuer"]
    verifier = CognitoAccessTokenVerifier(issuer, [clients.machine_client_id], leeway_s=0)
    now = int(time.time())
    good = {"iss": issuer, "sub": clients.machine_client_id, "client_id": clients.machine_client_id,
            "token_use": "access", "iat": now, "exp": now + 600}
    assert verifier.verify(_signed(good))["sub"] == clients.machine_client_id
    with pytest.raises(TokenInvalidException):
        verifier.verify(_signed({**good, "exp": now - 5}))
    with pytest.raises(TokenInvalidException):
        verifier.verify(_signed({**good, "token_use": "id"}))
    with pytest.raises(TokenInvalidException):
        verifier.verify(_signed({**good, "iss": "https://cognito-idp.eu-central-1.amazonaws.com/x"}))
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TokenInvalidException):
        verifier.verify(_signed(good, key=attacker_key))  # right kid, wrong key
    with pytest.raises(TokenInvalidException):
        verifier.verify("not-a-jwt")


def test_the_token_endpoint_refuses_bad_clients_grants_and_scopes(cognito):
    clients, issuer = cognito["clients"], cognito["issuer"]
    assert _token(issuer, clients.machine_client_id, "wrong").json()["error"] == "invalid_client"
    assert _token(issuer, clients.public_client_id, "").json()["error"] == "invalid_client"
    denied = _token(issuer, clients.machine_client_id, clients.machine_client_secret, scope="stratus/admin")
    assert denied.status_code == 400 and denied.json()["error"] == "invalid_scope"
    password = requests.post(f"{issuer}/oauth2/token", data={"grant_type": "password", "username": "u",
                             "password": "p"}, timeout=10)
    assert password.json()["error"] == "unsupported_grant_type"
