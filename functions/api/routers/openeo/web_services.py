"""Secondary web services: `/services`, `/services/{service_id}` (XYZ tiles of job results; the tiles
themselves come from the tiles function at `/tiles/...`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.shared.caller import caller
from routers.shared.context import backend, json_body, page_size, root_url

if TYPE_CHECKING:
    from stratus.domain.web_services import WebService

router = Router()


def _described(service: WebService, *, full: bool) -> dict:
    from stratus.domain.web_services import describe_web_service, tile_url_template

    services = backend().web_services
    return describe_web_service(service, tile_url_template(root_url(router), service, services.tile_access(service)),
                                full=full)


@router.get("/services")
def list_services() -> dict:
    services = backend().web_services.list(caller(router).user_id, page_size(router))
    return {"services": [_described(s, full=False) for s in services], "links": []}


@router.post("/services")
def create_service() -> Response:
    service = backend().web_services.create(caller(router).user_id, json_body(router))
    return Response(status_code=201, body="", headers={
        "Location": f"{openeo_url(router)}/services/{service.service_id}", "OpenEO-Identifier": service.service_id})


@router.get("/services/<service_id>")
def describe_service(service_id: str) -> dict:
    return _described(backend().web_services.get(caller(router).user_id, service_id), full=True)


@router.patch("/services/<service_id>")
def update_service(service_id: str) -> Response:
    backend().web_services.update(caller(router).user_id, service_id, json_body(router))
    return Response(status_code=204, body="")


@router.delete("/services/<service_id>")
def delete_service(service_id: str) -> Response:
    backend().web_services.delete(caller(router).user_id, service_id)
    return Response(status_code=204, body="")
