"""PynamoDB implementation of `ServiceRepository`: one item per service id (a small table, read whole)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from stratus.domain.services import Service, ServiceRepository
from stratus.events import utcnow
from stratus.store.models import ServiceModel


def _to_service(item: ServiceModel) -> Service:
    return Service(service_id=item.service_id, process=item.process, published=item.published is not False,
                   default_usage_limit=item.default_usage_limit, updated=item.updated)


class DynamoServiceRepository(ServiceRepository):
    def get(self, service_id: str) -> Service | None:
        try:
            return _to_service(ServiceModel.get(service_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list(self) -> list[Service]:
        return [_to_service(item) for item in ServiceModel.scan()]

    def put(self, service: Service) -> None:
        ServiceModel(service.service_id, process=service.process, published=service.published,
                     default_usage_limit=service.default_usage_limit, updated=service.updated or utcnow()).save()
