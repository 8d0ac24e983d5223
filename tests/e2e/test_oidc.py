"""OpenID Connect through the local Cognito pool, with the real openEO client's client-credentials flow."""

from __future__ import annotations

import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError

pytestmark = pytest.mark.e2e

LOAD_ONLY = {"load": {"process_id": "load_collection", "arguments": {
    "id": "sentinel-2-l2a-demo", "spatial_extent": None, "temporal_extent": ["2022-06-01", "2022-06-10"],
    "bands": ["B04"]}}, "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"},
                                                                           "format": "GTiff"}, "result": True}}


@pytest.fixture(scope="module")
def machine(local_system):
    client_id, client_secret = local_system.oidc_client
    return openeo.connect(local_system.api_url).authenticate_oidc_client_credentials(
        client_id=client_id, client_secret=client_secret, provider_id="cognito")


def test_the_provider_is_listed_with_its_issuer_and_a_public_client(local_system):
    providers = requests.get(f"{local_system.api_url}/openeo/1.2/credentials/oidc", timeout=10).json()["providers"]
    (provider,) = providers
    assert provider["id"] == "cognito"
    # the issuer is the pool's: its discovery document names the same issuer and a token endpoint
    discovery = requests.get(f"{provider['issuer']}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == provider["issuer"]
    assert discovery["token_endpoint"].startswith(provider["issuer"])
    assert provider["default_clients"][0]["grant_types"]
    assert "/credentials/oidc" in {e["path"] for e in requests.get(
        f"{local_system.api_url}/openeo/1.2/", timeout=10).json()["endpoints"]}


def test_a_machine_logs_in_with_client_credentials_and_owns_its_jobs(machine, connection, local_system):
    # Given the machine's identity is the app client
    me = machine.describe_account()
    assert me["user_id"] == local_system.oidc_client[0]
    # When it creates a job
    job = machine.create_job(LOAD_ONLY, title="oidc job")
    try:
        # Then it lists it, and the basic-auth demo user neither lists nor reads it
        assert job.job_id in {j["id"] for j in machine.list_jobs()}
        assert job.job_id not in {j["id"] for j in connection.list_jobs()}
        with pytest.raises(OpenEoApiError) as raised:
            connection.job(job.job_id).describe()
        assert raised.value.code == "JobNotFound"
    finally:
        job.delete()


def test_a_forged_or_foreign_token_is_refused(local_system):
    url = f"{local_system.api_url}/openeo/1.2/me"
    # a token endpoint answer for a wrong secret
    client_id, _ = local_system.oidc_client
    issuer = requests.get(f"{local_system.api_url}/openeo/1.2/credentials/oidc",
                          timeout=10).json()["providers"][0]["issuer"]
    refused = requests.post(f"{issuer}/oauth2/token", data={"grant_type": "client_credentials",
                            "client_id": client_id, "client_secret": "wrong"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    # a structurally valid but unsigned token
    response = requests.get(url, headers={"Authorization": "Bearer oidc/cognito/eyJhbGciOiJub25lIn0.e30."},
                            timeout=10)
    assert response.status_code == 403 and response.json()["code"] == "TokenInvalid"
    # an unknown provider
    response = requests.get(url, headers={"Authorization": "Bearer oidc/keycloak/abc"}, timeout=10)
    assert response.status_code == 403 and response.json()["code"] == "AuthenticationSchemeInvalid"
