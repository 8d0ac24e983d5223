"""openEO secondary web services (`/service_types`, `/services`): XYZ map tiles of a finished job's result.

A service is made for one job's result (its process graph is a single `load_result` of the job) and names
the result file it shows, the band, the value range stretched over the colour map and the colour map.
Only the owner sees and changes a service. Its tiles are served by the tiles function, outside the API:
the tile URL the owner is given carries a short-lived signed access token (like a presigned S3 URL), so
map clients that cannot send headers (XYZ layers) can load them; a service made `public` by an explicit
choice needs none. Each service signs its tokens with its own random key, kept with it: the tiles function
checks them without the deployment's token key (which signs API tokens and stays with the API).
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from stratus.domain.auth import decode_token, sign_token
from stratus.domain.results import ResultStore
from stratus.errors import (
    BadRequestException,
    JobNotFinishedException,
    ProcessGraphInvalidException,
    ServiceConfigInvalidException,
    ServiceConfigUnsupportedException,
    ServiceNotFoundException,
    ServiceUnsupportedException,
)
from stratus.events import JobStatus, isoformat_z, utcnow
from stratus.run_contract import RunConfig

XYZ = "xyz"
# Colour maps as stops (position 0..1, RGB); the tile renderer interpolates between them.
COLORMAPS: dict[str, tuple[tuple[float, tuple[int, int, int]], ...]] = {
    "viridis": ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)),
                (1.0, (253, 231, 37))),
    "rdylgn": ((0.0, (165, 0, 38)), (0.25, (244, 109, 67)), (0.5, (255, 255, 191)), (0.75, (102, 189, 99)),
               (1.0, (0, 104, 55))),
    "greys": ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
    "magma": ((0.0, (0, 0, 4)), (0.25, (81, 18, 124)), (0.5, (183, 55, 121)), (0.75, (252, 137, 97)),
              (1.0, (252, 253, 191))),
}
DEFAULT_COLORMAP = "viridis"
MIN_ZOOM, MAX_ZOOM = 0, 22
TILE_ACCESS_LIFETIME = timedelta(hours=12)
_TILE_ACCESS_USE = "xyz-tiles"
_CONFIGURATION = ("colormap", "rescale", "band", "asset", "public")
_GEOTIFF = "image/tiff"

SERVICE_TYPES: dict[str, Any] = {
    XYZ: {
        "title": "XYZ map tiles",
        "description": "256x256 PNG map tiles (Web Mercator) of a finished batch job's result, rendered on demand "
                       "with a colour map. The process is one `load_result` node naming the job.",
        "configuration": {
            "colormap": {"type": "string", "enum": sorted(COLORMAPS), "default": DEFAULT_COLORMAP,
                         "description": "The colour map the value range is stretched over."},
            "rescale": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
                        "description": "The values drawn at the colour map's ends [min, max]; default: the "
                                       "band's statistics, else [0, 1]."},
            "band": {"type": "integer", "minimum": 1, "default": 1, "description": "The band shown (1-based)."},
            "asset": {"type": "string", "description": "The result file shown; default: its first GeoTIFF."},
            "public": {"type": "boolean", "default": False,
                       "description": "Tiles for anyone with the URL, without an access token."},
        },
        "process_parameters": [],
        "links": [],
    },
}


@dataclass(frozen=True)
class TileStyle:
    asset_key: str  # the result file's key in the results bucket
    band: int
    rescale: tuple[float, float]
    colormap: str
    bbox: tuple[float, float, float, float] | None  # WGS84, to answer outside it without reading


@dataclass(frozen=True)
class WebService:
    service_id: str
    user_id: str
    job_id: str
    created: datetime
    configuration: Mapping[str, Any]
    style: TileStyle
    title: str | None = None
    description: str | None = None
    enabled: bool = True
    public: bool = False
    tile_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)  # signs its tile tokens


class WebServiceRepository(Protocol):
    def add(self, service: WebService) -> None: ...

    def get(self, service_id: str) -> WebService | None: ...

    def put(self, service: WebService) -> None: ...

    def delete(self, service_id: str) -> None: ...

    def list_for_user(self, user_id: str, limit: int) -> list[WebService]: ...


class JobLookup(Protocol):
    def get_job(self, user_id: str, job_id: str) -> Any: ...


def result_graph_job_id(process: Any) -> str:
    """The job id of a service's process: exactly one `load_result` node (the result of a finished job)."""
    graph = process.get("process_graph") if isinstance(process, Mapping) else None
    if not isinstance(graph, Mapping) or not graph:
        raise ProcessGraphInvalidException(message="The service's `process` needs a `process_graph`.")
    nodes = list(graph.values())
    node = nodes[0]
    if len(nodes) != 1 or not isinstance(node, Mapping) or node.get("process_id") != "load_result":
        raise ProcessGraphInvalidException(
            message="XYZ services show a batch job's result: the process graph must be one `load_result` node.")
    job_id = (node.get("arguments") or {}).get("id") if isinstance(node.get("arguments"), Mapping) else None
    if not isinstance(job_id, str) or not job_id:
        raise ProcessGraphInvalidException(message="`load_result` needs the job's `id`.")
    return job_id


def _configuration(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BadRequestException(reason="`configuration` must be an object")
    for name in raw:
        if name not in _CONFIGURATION:
            raise ServiceConfigUnsupportedException(parameter=name)
    config = dict(raw)
    if "colormap" in config and config["colormap"] not in COLORMAPS:
        raise ServiceConfigInvalidException(parameter="colormap", reason=f"one of {', '.join(sorted(COLORMAPS))}")
    if "rescale" in config:
        low_high = config["rescale"]
        if not (isinstance(low_high, list) and len(low_high) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in low_high) and low_high[0] < low_high[1]):
            raise ServiceConfigInvalidException(parameter="rescale", reason="two finite numbers [min, max], min < max")
    if "band" in config and not (isinstance(config["band"], int) and not isinstance(config["band"], bool)
                                 and config["band"] >= 1):
        raise ServiceConfigInvalidException(parameter="band", reason="a band number from 1")
    if "public" in config and not isinstance(config["public"], bool):
        raise ServiceConfigInvalidException(parameter="public", reason="true or false")
    if "asset" in config and not isinstance(config["asset"], str):
        raise ServiceConfigInvalidException(parameter="asset", reason="a result file name")
    return config


def _style(assets: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]) -> TileStyle:
    rasters = {name: asset for name, asset in assets.items() if str(asset.get("type", "")).startswith(_GEOTIFF)}
    if not rasters:
        raise ServiceConfigInvalidException(parameter="asset", reason="the job's result has no GeoTIFF to show")
    name = config.get("asset") or next(iter(sorted(rasters)))
    if name not in rasters:
        raise ServiceConfigInvalidException(parameter="asset", reason=f"one of {', '.join(sorted(rasters))}")
    asset = rasters[name]
    band = config.get("band", 1)
    bands = asset.get("raster:bands") or []
    if bands and band > len(bands):
        raise ServiceConfigInvalidException(parameter="band", reason=f"the file has {len(bands)} band(s)")
    rescale = config.get("rescale")
    if rescale is None:
        stats = (bands[band - 1].get("statistics") if bands and isinstance(bands[band - 1], Mapping) else None) or {}
        low, high = stats.get("minimum"), stats.get("maximum")
        rescale = [low, high] if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high \
            else [0.0, 1.0]
    bbox = asset.get("bbox")
    return TileStyle(asset_key=asset["key"], band=band, rescale=(float(rescale[0]), float(rescale[1])),
                     colormap=config.get("colormap", DEFAULT_COLORMAP),
                     bbox=tuple(bbox[:4]) if isinstance(bbox, list) and len(bbox) >= 4 else None)


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequestException(reason=f"`{name}` must be a string or null")
    return value


class WebServices:
    """Creates, lists, changes and deletes a user's XYZ services; signs and checks tile access."""

    def __init__(self, services: WebServiceRepository, jobs: Callable[[], JobLookup] | None = None,
                 results: ResultStore | None = None) -> None:
        """`jobs` (made on first use) and `results`: for creating and changing services; the tiles function,
        which only checks access, has neither."""
        self._services = services
        self._jobs = jobs
        self._results = results

    def create(self, user_id: str, body: Mapping[str, Any]) -> WebService:
        service_type = body.get("type")
        if not isinstance(service_type, str) or service_type.lower() != XYZ:
            raise ServiceUnsupportedException(type=service_type)
        job_id = result_graph_job_id(body.get("process"))
        config = _configuration(body.get("configuration"))
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise BadRequestException(reason="`enabled` must be true or false")
        service = WebService(
            service_id=f"s-{uuid.uuid4().hex}", user_id=user_id, job_id=job_id, created=utcnow(),
            configuration=config, style=_style(self._result_assets(user_id, job_id), config),
            title=_optional_text(body, "title"), description=_optional_text(body, "description"),
            enabled=enabled, public=config.get("public", False))
        self._services.add(service)
        return service

    def _result_assets(self, user_id: str, job_id: str) -> Mapping[str, Mapping[str, Any]]:
        job = self._jobs().get_job(user_id, job_id)  # another user's job is JobNotFound
        if job.status is not JobStatus.FINISHED or job.run_id is None:
            raise JobNotFinishedException()
        manifest = self._results.read_manifest(RunConfig.for_run(job.job_id, job.run_id).manifest_key)
        if manifest is None:
            raise JobNotFinishedException(message="The job finished but its results are not available (anymore).")
        return manifest.assets

    def get(self, user_id: str, service_id: str) -> WebService:
        service = self._services.get(service_id)
        if service is None or service.user_id != user_id:
            raise ServiceNotFoundException(identifier=service_id)
        return service

    def list(self, user_id: str, limit: int = 100) -> list[WebService]:
        return self._services.list_for_user(user_id, limit)

    def update(self, user_id: str, service_id: str, body: Mapping[str, Any]) -> WebService:
        service = self.get(user_id, service_id)
        if not isinstance(body, Mapping) or not body:
            raise BadRequestException(reason="nothing to change")
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = _optional_text(body, "title")
        if "description" in body:
            changes["description"] = _optional_text(body, "description")
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise BadRequestException(reason="`enabled` must be true or false")
            changes["enabled"] = body["enabled"]
        job_id = result_graph_job_id(body["process"]) if "process" in body else service.job_id
        if "configuration" in body or job_id != service.job_id:
            config = _configuration(body.get("configuration", service.configuration))
            changes.update(configuration=config, public=config.get("public", False), job_id=job_id,
                           style=_style(self._result_assets(user_id, job_id), config))
        updated = replace(service, **changes)
        self._services.put(updated)
        return updated

    def delete(self, user_id: str, service_id: str) -> None:
        self.get(user_id, service_id)
        self._services.delete(service_id)

    def tile_access(self, service: WebService) -> str | None:
        """The access token of a private service's tile URL (None for a public one)."""
        if service.public:
            return None
        return sign_token(service.tile_key, service.service_id, TILE_ACCESS_LIFETIME, use=_TILE_ACCESS_USE)

    def tile_style(self, service_id: str, access: str | None) -> TileStyle:
        """What a tile request may draw. Raises `ServiceNotFoundException` for a missing, disabled or
        private service without a valid access token (one answer for all: nothing is learnt by probing)."""
        service = self._services.get(service_id)
        if service is None or not service.enabled:
            raise ServiceNotFoundException(identifier=service_id)
        if not service.public:
            claims = decode_token(service.tile_key, access) if access else None
            if not claims or claims.get("sub") != service_id or claims.get("use") != _TILE_ACCESS_USE:
                raise ServiceNotFoundException(identifier=service_id)
        return service.style


def tile_url_template(tiles_root: str, service: WebService, access: str | None) -> str:
    url = f"{tiles_root}/tiles/{quote(service.service_id, safe='')}/{{z}}/{{x}}/{{y}}.png"
    return f"{url}?access={access}" if access else url


def describe_web_service(service: WebService, url: str, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": service.service_id,
        "title": service.title,
        "description": service.description,
        "url": url,
        "type": XYZ,
        "enabled": service.enabled,
        "created": isoformat_z(service.created),
    }
    if full:
        data.update({
            "process": {"process_graph": {"result": {"process_id": "load_result",
                                                     "arguments": {"id": service.job_id}, "result": True}}},
            "configuration": dict(service.configuration),
            "attributes": {"job_id": service.job_id, "public": service.public, "colormap": service.style.colormap,
                           "rescale": list(service.style.rescale), "band": service.style.band,
                           "bbox": list(service.style.bbox) if service.style.bbox else None,
                           "min_zoom": MIN_ZOOM, "max_zoom": MAX_ZOOM},
        })
    return data
