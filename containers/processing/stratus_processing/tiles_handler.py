"""Lambda entry point of the tiles function (the processing image): `GET /tiles/{service_id}/{z}/{x}/{y}.png`
of an XYZ secondary web service, rendered from the job's result COG. The reader and the service lookup live
as long as the container, so warm tiles reuse open datasets and cached header bytes."""

from __future__ import annotations

import base64
import json
import re
from functools import lru_cache
from typing import Any

from rasterio.errors import RasterioIOError

from stratus.domain.web_services import WebServices
from stratus.errors import NotFoundException, OpenEOApiException
from stratus.settings import Settings
from stratus.store import models
from stratus.store.web_services import DynamoWebServiceRepository

from stratus_processing.io.cog import RasterReader
from stratus_processing.tiles import TileOutOfRange, render_tile

_TILE_PATH = re.compile(r"^/tiles/(?P<service>[A-Za-z0-9_-]{1,64})/(?P<z>\d{1,2})/(?P<x>\d{1,8})/(?P<y>\d{1,8})\.png$")
# the portal may be served from another origin (CloudFront) and draws tiles on a canvas
_HEADERS = {"Access-Control-Allow-Origin": "*"}


@lru_cache(maxsize=1)
def _container() -> tuple[Settings, WebServices, RasterReader]:
    settings = Settings.from_env()
    models.configure(settings)
    return settings, WebServices(DynamoWebServiceRepository()), RasterReader.from_environ()


def _error(error: OpenEOApiException) -> dict[str, Any]:
    return {"statusCode": error.status_code, "headers": {**_HEADERS, "Content-Type": "application/json"},
            "body": json.dumps(error.to_dict()), "isBase64Encoded": False}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    match = _TILE_PATH.match(event.get("path") or "")
    if match is None or event.get("httpMethod", "GET") not in ("GET", "HEAD"):
        return _error(NotFoundException())
    access = (event.get("queryStringParameters") or {}).get("access")
    settings, services, reader = _container()
    try:
        style = services.tile_style(match["service"], access)
        png = render_tile(reader, f"s3://{settings.results_bucket}/{style.asset_key}", style,
                          int(match["z"]), int(match["x"]), int(match["y"]))
    except TileOutOfRange:
        return _error(NotFoundException(message="No such tile."))
    except RasterioIOError:  # the job (and its results) deleted, or its results expired, since
        return _error(NotFoundException(message="The service's result is not available (anymore)."))
    except OpenEOApiException as error:
        return _error(error)
    return {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(png).decode("ascii"),
            "headers": {**_HEADERS, "Content-Type": "image/png", "Cache-Control": "private, max-age=300"}}
