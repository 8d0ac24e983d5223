"""Services of the order API (`/api/v1/services`): published, parameterised openEO processes that
customers order by name.

A service is an openEO process object (`id`, `summary`, `description`, `parameters` with JSON
schemas, `returns`, `process_graph`) plus order-service settings (`default_usage_limit`). The
catalog is the definitions shipped with the runtime (`stratus/services/*.json`) merged with the
`services` table: a table row overrides the shipped definition of the same id, which is how admins
publish, update and withdraw services (`published=False`) without a deployment. Withdrawn services
stay in the table, so the orders made from them keep their meaning.

Shipped definitions name the collection they process as `SHIPPED_COLLECTION_PLACEHOLDER`; it is
replaced by the deployment's `Settings.order_collection_id` when they are loaded.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources as package_files
from typing import Any, Protocol
from urllib.parse import quote

from stratus.domain.principal import ADMIN_SCOPE, Principal, service_scope
from stratus.domain.processes import predefined_processes
from stratus.domain.validation import validate_process
from stratus.events import isoformat_z, utcnow
from stratus.file_formats import GTIFF, MEDIA_TYPES, NETCDF, find_format
from stratus.order_errors import (
    InvalidRequestException,
    ScopeMissingException,
    ServiceNotFoundException,
)

SHIPPED_COLLECTION_PLACEHOLDER = "${order_collection_id}"
SERVICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # also part of the scope `service:<id>`
# Process object fields an admin may set; anything else in a PUT body is refused.
PROCESS_FIELDS = ("summary", "description", "categories", "parameters", "returns", "process_graph",
                  "exceptions", "examples", "links", "deprecated", "experimental")
SERVICE_FIELDS = ("default_usage_limit", "published")
MAX_USAGE_INTERVAL_S = 366 * 86400
RASTER_FORMATS = (GTIFF, NETCDF)


@dataclass
class Service:
    service_id: str
    process: dict[str, Any]  # the openEO process object, `id` included
    published: bool = True
    default_usage_limit: dict[str, int] | None = None  # {"limit": n, "interval_s": s}
    updated: datetime | None = None
    shipped: bool = False  # the definition comes from the runtime package, not the table
    overrides_shipped: bool = False  # a table row replacing (or withdrawing) a shipped definition

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return [p for p in self.process.get("parameters") or [] if isinstance(p, dict)]

    @property
    def process_graph(self) -> dict[str, Any]:
        return self.process.get("process_graph") or {}

    @property
    def title(self) -> str:
        return self.process.get("summary") or self.service_id


class ServiceRepository(Protocol):
    def get(self, service_id: str) -> Service | None: ...

    def list(self) -> list[Service]: ...

    def put(self, service: Service) -> None: ...


@cache
def _shipped_documents() -> tuple[dict[str, Any], ...]:
    folder = package_files.files("stratus") / "services"
    return tuple(json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.iterdir(), key=lambda f: f.name)
                 if f.name.endswith(".json"))


def shipped_services(collection_id: str) -> dict[str, Service]:
    """The definitions shipped with the runtime, bound to the deployment's collection."""
    services = {}
    for document in _shipped_documents():
        document = _replace_placeholder(copy.deepcopy(document), collection_id)
        limit = document.pop("default_usage_limit", None)
        services[document["id"]] = Service(service_id=document["id"], process=document, published=True,
                                           default_usage_limit=limit, shipped=True)
    return services


def _replace_placeholder(value: Any, collection_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_placeholder(v, collection_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_placeholder(v, collection_id) for v in value]
    return collection_id if value == SHIPPED_COLLECTION_PLACEHOLDER else value


def check_usage_limit(value: Any, where: str = "default_usage_limit") -> dict[str, int] | None:
    """`{"limit": n >= 0, "interval_s": 1..366 days}` or None; raises InvalidRequest otherwise."""
    if value is None:
        return None
    ok = isinstance(value, Mapping) and set(value) == {"limit", "interval_s"} and all(
        isinstance(value[k], int) and not isinstance(value[k], bool) for k in ("limit", "interval_s"))
    if not ok or value["limit"] < 0 or not 0 < value["interval_s"] <= MAX_USAGE_INTERVAL_S:
        raise InvalidRequestException(reason=f"`{where}` must be {{\"limit\": <orders, >= 0>, "
                                             f"\"interval_s\": <seconds, 1..{MAX_USAGE_INTERVAL_S}>}}")
    return {"limit": value["limit"], "interval_s": value["interval_s"]}


class ServiceCatalog:
    def __init__(self, repository: ServiceRepository, collection_id: str) -> None:
        self._repository = repository
        self._shipped = shipped_services(collection_id)

    # --- reading --------------------------------------------------------------------------------

    def find(self, service_id: str) -> Service | None:
        """A service by id, published or not: the table's row, else the shipped definition."""
        if not SERVICE_ID_PATTERN.match(service_id or ""):
            return None
        stored = self._repository.get(service_id)
        if stored is not None:
            stored.overrides_shipped = service_id in self._shipped
            return stored
        return copy.deepcopy(self._shipped.get(service_id))

    def all(self) -> list[Service]:
        merged = {service_id: copy.deepcopy(service) for service_id, service in self._shipped.items()}
        for stored in self._repository.list():
            stored.overrides_shipped = stored.service_id in self._shipped
            merged[stored.service_id] = stored
        return [merged[key] for key in sorted(merged)]

    def visible_to(self, principal: Principal) -> list[Service]:
        """GET /services: admins see every service (withdrawn ones flagged); customers the published
        services they hold the scope for."""
        if principal.is_admin:
            return self.all()
        return [s for s in self.all() if s.published and principal.may_order(s.service_id)]

    def get_visible(self, principal: Principal, service_id: str) -> Service:
        """GET /services/{id}; a service the caller may not order is reported as missing."""
        service = self.find(service_id)
        if service is None or not (principal.is_admin or (service.published and principal.may_order(service_id))):
            raise ServiceNotFoundException(service_id=service_id)
        return service

    def orderable(self, principal: Principal, service_id: str) -> Service:
        """The service an order is for: raises ScopeMissing (403) without the service's scope, then
        ServiceNotFound (404) when it does not exist or is withdrawn."""
        if not principal.may_order(service_id):
            raise ScopeMissingException(scope=service_scope(service_id))
        service = self.find(service_id)
        if service is None or not service.published:
            raise ServiceNotFoundException(service_id=service_id)
        return service

    # --- admin ----------------------------------------------------------------------------------

    def publish(self, principal: Principal, service_id: str, body: Mapping[str, Any]) -> tuple[Service, bool]:
        """PUT /services/{id}: creates or fully replaces the service (a table row, which overrides a
        shipped definition). Returns the service and whether it is new to the catalog."""
        _require_admin(principal)
        if not SERVICE_ID_PATTERN.match(service_id):
            raise InvalidRequestException(reason=f"a service id must match {SERVICE_ID_PATTERN.pattern}")
        if not isinstance(body, Mapping):
            raise InvalidRequestException(reason="the body must be an openEO process object")
        unknown = sorted(set(body) - set(PROCESS_FIELDS) - set(SERVICE_FIELDS) - {"id"})
        if unknown:
            raise InvalidRequestException(reason=f"unknown field(s) {', '.join(unknown)}; a service is an openEO "
                                                 f"process object ({', '.join(PROCESS_FIELDS)}) plus "
                                                 f"{', '.join(SERVICE_FIELDS)}")
        if "id" in body and body["id"] != service_id:
            raise InvalidRequestException(reason=f"the body's id '{body['id']}' differs from the path's '{service_id}'")
        process = {key: copy.deepcopy(body[key]) for key in PROCESS_FIELDS if key in body}
        process["id"] = service_id
        _check_process(process)
        published = body.get("published", True)
        if not isinstance(published, bool):
            raise InvalidRequestException(reason="`published` must be true or false")
        existing = self.find(service_id)
        service = Service(service_id=service_id, process=process, published=published,
                          default_usage_limit=check_usage_limit(body.get("default_usage_limit")),
                          updated=utcnow())
        self._repository.put(service)
        service.overrides_shipped = service_id in self._shipped
        return service, existing is None

    def withdraw(self, principal: Principal, service_id: str) -> Service:
        """DELETE /services/{id}: the service stays (as a table row with `published=False`) for the
        orders made from it, but can no longer be ordered. Repeating it changes nothing."""
        _require_admin(principal)
        service = self.find(service_id)
        if service is None:
            raise ServiceNotFoundException(service_id=service_id)
        if service.published:
            service.published = False
            service.updated = utcnow()
            service.shipped = False
            self._repository.put(service)
        return service


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ScopeMissingException(scope=ADMIN_SCOPE)


def _check_process(process: dict[str, Any]) -> None:
    """The openEO validation of `POST /validation`, plus what an order needs: every parameter has a
    name and a schema."""
    parameters = process.get("parameters")
    if parameters is None:
        parameters = process["parameters"] = []
    if not isinstance(parameters, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and re.match(r"^\w+$", p["name"])
            and isinstance(p.get("schema"), (dict, list)) for p in parameters):
        raise InvalidRequestException(reason="`parameters` must be a list of {name (^\\w+$), description, schema}")
    names = [p["name"] for p in parameters]
    if len(set(names)) != len(names):
        raise InvalidRequestException(reason="parameter names must be unique")
    errors = validate_process(process, lambda _process_id: None)  # services call predefined processes only
    if errors:
        raise InvalidRequestException(reason="the process is invalid: " + " ".join(e.message for e in errors))


def describe_service(service: Service, principal: Principal, base_url: str, *, full: bool,
                     usage_limit: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A service as `/services` shows it: process metadata, the parameters' schemas and links; the
    process graph only in the single-service view (`full`)."""
    process = service.process
    url = f"{base_url}/services/{quote(service.service_id, safe='')}"
    data: dict[str, Any] = {
        "id": service.service_id,
        "title": service.title,
        "summary": process.get("summary"),
        "description": process.get("description"),
        "categories": process.get("categories") or [],
        "parameters": service.parameters,
        "returns": delivered_result(process),
        "usage_limit": dict(usage_limit) if usage_limit else None,
        "links": [
            {"rel": "self", "href": url, "type": "application/json"},
            {"rel": "orders", "href": f"{url}/orders", "type": "application/json",
             "title": "POST an order of this service here"},
        ],
    }
    if principal.is_admin:
        data["published"] = service.published
        data["default_usage_limit"] = service.default_usage_limit
        data["source"] = "table" if not service.shipped else "shipped"
        data["overrides_shipped"] = service.overrides_shipped
        data["updated"] = isoformat_z(service.updated) if service.updated else None
    if full:
        data["process_graph"] = service.process_graph
    return data


def delivered_result(process: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an order of the service delivers, as the catalogue's `returns`: the file `format` and `media_type`
    `save_result` writes and the `schema` of the data it saves (from the process specs), with the
    definition's own description. The process' own `returns` is `save_result`'s (a boolean, or STAC in
    openEO processes 2.0): true to openEO, but not what a customer receives."""
    declared = process.get("returns") if isinstance(process.get("returns"), Mapping) else {}
    graph = process.get("process_graph")
    if not isinstance(graph, Mapping):
        return dict(declared) or None
    result = next((node for node in graph.values() if isinstance(node, Mapping) and node.get("result")), None)
    if result is None:
        return dict(declared) or None
    delivered: dict[str, Any] = {"description": declared.get("description") or "The result of the service."}
    saved = result
    if result.get("process_id") == "save_result":
        arguments = result.get("arguments") if isinstance(result.get("arguments"), Mapping) else {}
        format_name = find_format(arguments.get("format"))
        if format_name is not None:
            delivered["format"] = format_name
            delivered["media_type"] = MEDIA_TYPES[format_name]
        source = arguments.get("data")
        saved = graph.get(source["from_node"]) if isinstance(source, Mapping) and "from_node" in source else None
    schema = _returned_schemas().get(saved.get("process_id")) if isinstance(saved, Mapping) else None
    if schema is not None:
        delivered["schema"] = schema = copy.deepcopy(schema)
        if delivered.get("format") in RASTER_FORMATS and schema.get("subtype") == "datacube" \
                and "dimensions" not in schema:
            schema["dimensions"] = [{"type": "spatial", "axis": ["x", "y"]}]  # what a raster format stores
    return delivered


@cache
def _returned_schemas() -> dict[str, Any]:
    return {spec["id"]: spec["returns"]["schema"] for spec in predefined_processes()
            if isinstance(spec.get("returns"), Mapping) and "schema" in spec["returns"]}
