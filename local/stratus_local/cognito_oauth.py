"""The OAuth2 token endpoint that moto's Cognito lacks, so the client-credentials grant works locally.

moto serves a user pool's JWKS (`/<pool>/.well-known/jwks.json`) but no `/oauth2/token` and no
`token_endpoint` in its discovery document. This WSGI middleware in front of the emulator adds both,
the way a Cognito domain does: it checks the app client and its secret through the emulator's own
Cognito API, and signs access tokens with moto's user-pool key (the key behind that JWKS), so the API
verifies them exactly as it verifies real Cognito tokens. The issuer is the local pool URL, which is
what `/credentials/oidc` advertises.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from functools import cache
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

import jwt

TOKEN_LIFETIME_S = 3600
_POOL_PATH = re.compile(r"^/(?P<pool>[\w-]+_[0-9A-Za-z]+)/(?P<what>oauth2/token|\.well-known/openid-configuration)$")
# Cognito grants only custom (resource-server) scopes in the client-credentials flow; standard OIDC
# scopes that tools add to every request (the openeo client always asks for `openid`) are not granted.
_STANDARD_SCOPES = {"openid", "email", "phone", "profile", "offline_access", "aws.cognito.signin.user.admin"}


@cache
def _moto_signing_key() -> tuple[Any, str]:
    """moto signs every pool's tokens with one RSA key shipped as a package resource."""
    from moto.utilities.utils import load_resource

    private = load_resource("cognitoidp/resources/jwks-private.json")
    public = load_resource("cognitoidp/resources/jwks-public.json")
    return jwt.PyJWK(private, algorithm="RS256").key, public["keys"][0]["kid"]


def _json_response(start_response: Callable, status: str, document: dict) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]


def _oauth_error(start_response: Callable, status: str, error: str, description: str) -> list[bytes]:
    return _json_response(start_response, status, {"error": error, "error_description": description})


class CognitoOAuthEndpoints:
    """WSGI middleware: `/<pool>/oauth2/token` and a discovery document listing it; the rest passes on."""

    def __init__(self, app: Callable, cognito_client: Callable[[], Any]) -> None:
        self._app = app
        self._cognito = cognito_client  # a factory: the emulator is not listening yet when this is built

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        match = _POOL_PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self._app(environ, start_response)
        pool_id = match["pool"]
        issuer = f"{environ.get('wsgi.url_scheme', 'http')}://{environ['HTTP_HOST']}/{pool_id}"
        if match["what"] == "oauth2/token":
            if environ.get("REQUEST_METHOD") != "POST":
                return _oauth_error(start_response, "405 Method Not Allowed", "invalid_request", "use POST")
            return self._token(environ, start_response, pool_id, issuer)
        return _json_response(start_response, "200 OK", {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}/oauth2/token",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    def _token(self, environ: dict, start_response: Callable, pool_id: str, issuer: str) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = {k: v[-1] for k, v in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return _oauth_error(start_response, "401 Unauthorized", "invalid_client", "bad Basic header")
            client_id, _, client_secret = (unquote(part) for part in decoded.partition(":"))
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(start_response, "400 Bad Request", "unsupported_grant_type",
                                "only client_credentials is available locally")
        client = self._describe_client(pool_id, client_id)
        if client is None or not client_secret or client.get("ClientSecret") != client_secret:
            return _oauth_error(start_response, "401 Unauthorized", "invalid_client", "unknown client or secret")
        if "client_credentials" not in client.get("AllowedOAuthFlows", []):
            return _oauth_error(start_response, "400 Bad Request", "unauthorized_client",
                                "the client may not use client_credentials")
        allowed = set(client.get("AllowedOAuthScopes", [])) - _STANDARD_SCOPES
        requested = set((form.get("scope") or "").split()) - _STANDARD_SCOPES
        if requested - allowed:
            return _oauth_error(start_response, "400 Bad Request", "invalid_scope",
                                f"not allowed: {' '.join(sorted(requested - allowed))}")
        granted = sorted(requested or allowed)
        key, kid = _moto_signing_key()
        now = int(time.time())
        claims = {"iss": issuer, "sub": client_id, "client_id": client_id, "token_use": "access",
                  "scope": " ".join(granted), "auth_time": now, "iat": now, "exp": now + TOKEN_LIFETIME_S,
                  "jti": str(uuid.uuid4()), "version": 2}
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return _json_response(start_response, "200 OK", {"access_token": token, "token_type": "Bearer",
                                                          "expires_in": TOKEN_LIFETIME_S})

    def _describe_client(self, pool_id: str, client_id: str | None) -> dict | None:
        if not client_id:
            return None
        try:
            return self._cognito().describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
        except Exception:  # noqa: BLE001 (unknown pool or client: the grant is refused the same way)
            return None
