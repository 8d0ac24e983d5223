"""What an order would cost before it is placed (`POST /api/v1/services/{id}/estimate`, for the portal's
order form): the same checks as placing it, the area, whether it could succeed, and the dry run's costs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratus.domain.estimate import CostModel, estimate_graph, estimate_job
from stratus.domain.order_inputs import area_km2, bind_parameters, check_parameters, geojson_parameters
from stratus.domain.orders import check_periods, input_problem
from stratus.domain.principal import Principal
from stratus.domain.services import ServiceCatalog
from stratus.order_errors import InvalidRequestException


def estimate_order(services: ServiceCatalog, principal: Principal, service_id: str, body: Any, *, catalog: Any,
                   cost_model: CostModel, max_area_km2: float, currency: str) -> dict[str, Any]:
    """Nothing is stored or started. `costs` is None when a source could not be searched now."""
    service = services.orderable(principal, service_id)
    if not isinstance(body, Mapping) or not isinstance(body.get("parameters", {}), Mapping):
        raise InvalidRequestException(reason="the body must be an object {parameters}")
    parameters = body.get("parameters", {})
    problems = check_parameters(service.parameters, parameters)
    if problems:
        raise InvalidRequestException(reason="; ".join(problems))
    bound = bind_parameters(service.process_graph, service.parameters, parameters)
    problems = check_periods(bound)
    if problems:
        raise InvalidRequestException(reason="; ".join(problems))
    areas = [area_km2(parameters[name]) for name in geojson_parameters(service.parameters) if name in parameters]
    problem = input_problem(service, parameters, bound, catalog, max_area_km2)
    answer: dict[str, Any] = {"service_id": service_id, "area_km2": round(sum(areas), 3) if areas else None,
                              "max_area_km2": max_area_km2, "valid": problem is None, "problem": None,
                              "costs": None, "currency": currency, "duration_s": None, "size_bytes": None}
    if problem is not None:
        answer["problem"] = {"code": problem.error_code, "reason": problem.reason}
        return answer
    graph = estimate_graph(bound, catalog.collection, catalog.items)
    if graph.complete:
        estimate = estimate_job(graph, cost_model)
        answer.update(costs=estimate.costs, duration_s=estimate.duration_s, size_bytes=estimate.size_bytes)
    return answer
