"""openEO secondary web services (XYZ tiles of job results) through the real handler, and the tiles
function's access check on the same emulated deployment."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from stratus_processing import tiles_handler

from stratus.events import JobStatus
from tests.api.test_job_results_api import _job, _move_to, _write_results


def _xyz(job_id: str, **configuration) -> dict:
    return {"type": "XYZ", "title": "NDVI map",
            "process": {"process_graph": {"r": {"process_id": "load_result", "arguments": {"id": job_id},
                                                "result": True}}},
            "configuration": configuration}


@pytest.fixture
def finished_job(api):
    job_id = _job(api)
    _write_results(api, job_id, _move_to(api, job_id, JobStatus.FINISHED))
    return job_id


@pytest.fixture
def tiles(api):
    tiles_handler._container.cache_clear()  # a fresh container of the tiles function for this deployment
    yield lambda path, **query: tiles_handler.lambda_handler(
        {"path": path, "httpMethod": "GET", "queryStringParameters": query or None}, None)
    tiles_handler._container.cache_clear()


def _create(api, body, user="alice"):
    return api.post("/openeo/1.2/services", user=user, json_body=body)


def test_service_types_offer_xyz_with_its_configuration(api):
    types = api.get("/openeo/1.2/service_types").json()
    assert set(types["xyz"]["configuration"]) == {"colormap", "rescale", "band", "asset", "public"}


def test_owner_creates_lists_changes_and_deletes_an_xyz_service(api, finished_job, tiles):
    # When alice makes an XYZ service of her finished job
    created = _create(api, _xyz(finished_job, colormap="rdylgn", rescale=[-1, 1]))
    assert created.status == 201, created.body
    service_id = created.headers["openeo-identifier"]
    assert created.headers["location"].endswith(f"/openeo/1.2/services/{service_id}")
    # Then it is listed and described with a tile URL template carrying an access token
    assert [s["id"] for s in api.get("/openeo/1.2/services", user="alice").json()["services"]] == [service_id]
    service = api.get(f"/openeo/1.2/services/{service_id}", user="alice").json()
    assert service["type"] == "xyz" and service["enabled"] is True and service["title"] == "NDVI map"
    assert service["attributes"]["rescale"] == [-1.0, 1.0] and service["attributes"]["colormap"] == "rdylgn"
    url = urlparse(service["url"])
    assert url.path == f"/tiles/{service_id}/{{z}}/{{x}}/{{y}}.png"
    access = parse_qs(url.query)["access"][0]
    # And the tiles function serves a tile with the token (far from the result: transparent, no read), not without
    far_away = f"/tiles/{service_id}/3/0/0.png"
    answer = tiles(far_away, access=access)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"] == "image/png"
    assert tiles(far_away)["statusCode"] == 404
    assert tiles(far_away, access=access[:-2] + "xx")["statusCode"] == 404
    assert tiles(f"/tiles/{service_id}/3/9/0.png", access=access)["statusCode"] == 404  # no such tile
    # When she disables it, its tiles are gone; when she deletes it, the service is gone
    assert api.patch(f"/openeo/1.2/services/{service_id}", user="alice", json_body={"enabled": False}).status == 204
    assert tiles(far_away, access=access)["statusCode"] == 404
    assert api.delete(f"/openeo/1.2/services/{service_id}", user="alice").status == 204
    assert api.get(f"/openeo/1.2/services/{service_id}", user="alice").json()["code"] == "ServiceNotFound"


def test_only_the_owner_sees_a_service_and_public_tiles_need_no_token(api, finished_job, tiles):
    service_id = _create(api, _xyz(finished_job, public=True)).headers["openeo-identifier"]
    # bob neither sees nor changes alice's service
    assert api.get("/openeo/1.2/services", user="bob").json()["services"] == []
    for method in ("get", "delete"):
        answer = getattr(api, method)(f"/openeo/1.2/services/{service_id}", user="bob")
        assert answer.status == 404 and answer.json()["code"] == "ServiceNotFound"
    # nor makes one of her job
    assert _create(api, _xyz(finished_job), user="bob").json()["code"] == "JobNotFound"
    # a public service's URL has no token and its tiles need none
    service = api.get(f"/openeo/1.2/services/{service_id}", user="alice").json()
    assert "access=" not in service["url"] and service["attributes"]["public"] is True
    assert tiles(f"/tiles/{service_id}/0/0/0.png.x")["statusCode"] == 404
    assert tiles(f"/tiles/{service_id}/2/0/0.png")["statusCode"] == 200


@pytest.mark.parametrize("body, code", [
    ({"type": "WMTS"}, "ServiceUnsupported"),
    ({"type": "XYZ", "process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2},
                                                         "result": True}}}}, "ProcessGraphInvalid"),
    ("colormap", "ServiceConfigInvalid"),
    ("rescale", "ServiceConfigInvalid"),
    ("opacity", "ServiceConfigUnsupported"),
])
def test_bad_services_are_refused_with_their_reason(api, finished_job, body, code):
    bad_configuration = {"colormap": {"colormap": "rainbow"}, "rescale": {"rescale": [1, 0]},
                         "opacity": {"opacity": 0.5}}
    if isinstance(body, str):
        body = _xyz(finished_job, **bad_configuration[body])
    answer = _create(api, body)
    assert answer.status == 400 and answer.json()["code"] == code


def test_a_service_of_an_unfinished_job_is_refused(api):
    job_id = _job(api)
    answer = _create(api, _xyz(job_id))
    assert answer.status == 400 and answer.json()["code"] == "JobNotFinished"
