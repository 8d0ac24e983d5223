"""PynamoDB implementation of `WebServiceRepository`: one item per service, a user's by an index."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pynamodb.exceptions import DoesNotExist

from stratus.domain.web_services import TileStyle, WebService, WebServiceRepository
from stratus.store.models import WebServiceModel


def _document(service: WebService) -> dict[str, Any]:
    return {"job_id": service.job_id, "title": service.title, "description": service.description,
            "enabled": service.enabled, "public": service.public, "configuration": dict(service.configuration),
            "tile_key": service.tile_key,
            "style": {**asdict(service.style), "rescale": list(service.style.rescale),
                      "bbox": list(service.style.bbox) if service.style.bbox else None}}


def _service(item: WebServiceModel) -> WebService:
    doc = item.document
    style = doc["style"]
    return WebService(
        service_id=item.service_id, user_id=item.user_id, job_id=doc["job_id"], created=item.created,
        configuration=doc.get("configuration") or {},
        style=TileStyle(asset_key=style["asset_key"], band=style["band"], rescale=tuple(style["rescale"]),
                        colormap=style["colormap"], bbox=tuple(style["bbox"]) if style.get("bbox") else None),
        title=doc.get("title"), description=doc.get("description"), enabled=doc.get("enabled", True),
        public=doc.get("public", False), tile_key=doc["tile_key"])


class DynamoWebServiceRepository(WebServiceRepository):
    def add(self, service: WebService) -> None:
        WebServiceModel(service.service_id, user_id=service.user_id, created=service.created,
                        document=_document(service)).save(condition=WebServiceModel.service_id.does_not_exist())

    def put(self, service: WebService) -> None:
        WebServiceModel(service.service_id, user_id=service.user_id, created=service.created,
                        document=_document(service)).save()

    def get(self, service_id: str) -> WebService | None:
        try:
            return _service(WebServiceModel.get(service_id, consistent_read=True))
        except DoesNotExist:
            return None

    def delete(self, service_id: str) -> None:
        WebServiceModel(service_id).delete()

    def list_for_user(self, user_id: str, limit: int) -> list[WebService]:
        newest_first = WebServiceModel.by_user.query(user_id, limit=limit, scan_index_forward=False)
        return [_service(item) for item in newest_first]
