"""Verifies Amazon Cognito access tokens against the user pool's published keys (JWKS).

The checks follow AWS' guidance for Cognito tokens (as `aws-jwt-verify` does): RS256 signature by a
key of the pool's JWKS, `iss` equal to the pool's issuer, not expired, `token_use` "access", and
`client_id` one of our app clients. pyjwt's `PyJWKClient` fetches and caches the keys (re-fetching
only for an unknown `kid`, i.e. after a key rotation), so a warm Lambda verifies without network I/O.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import jwt

from stratus.errors import InternalException, TokenInvalidException

log = logging.getLogger(__name__)

_ALGORITHMS = ["RS256"]
_HTTP_TIMEOUT_S = 5
_JWKS_LIFESPAN_S = 24 * 3600


class CognitoAccessTokenVerifier:
    def __init__(self, issuer: str, client_ids: list[str], *, leeway_s: int = 30) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_ids = set(client_ids)
        self._leeway_s = leeway_s
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        try:
            signing_key = self._jwks_client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            log.error("the OpenID Connect provider's keys could not be fetched: %s", error)
            raise InternalException(message="The identity provider could not be reached; try again later.") \
                from None
        except jwt.PyJWTError:
            raise TokenInvalidException() from None
        try:
            claims = jwt.decode(token, signing_key.key, algorithms=_ALGORITHMS, issuer=self._issuer,
                                leeway=self._leeway_s,
                                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False})
        except jwt.PyJWTError:
            raise TokenInvalidException() from None
        if claims.get("token_use") != "access" or claims.get("client_id") not in self._client_ids:
            raise TokenInvalidException()
        return claims

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is None:
                self._jwks = jwt.PyJWKClient(self._discover_jwks_uri(), cache_keys=True, lifespan=_JWKS_LIFESPAN_S,
                                             timeout=_HTTP_TIMEOUT_S)
            return self._jwks

    def _discover_jwks_uri(self) -> str:
        url = f"{self._issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as response:  # noqa: S310 (https in AWS)
                return json.load(response)["jwks_uri"]
        except (OSError, ValueError, KeyError) as error:
            raise jwt.PyJWKClientConnectionError(f"discovery document {url}: {error}") from error
