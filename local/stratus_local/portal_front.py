"""The local front's other doors beside the API: the tiles function at `/tiles/` (as API Gateway routes it
in AWS) and the portal's built files at `/portal/` (CloudFront and S3 in AWS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from stratus_local.handlers import REPO_ROOT

PORTAL_DIST = REPO_ROOT / "portal" / "dist"
TILES_PREFIX, PORTAL_PREFIX = "/tiles/", "/portal"


class PortalFront:
    """Dispatches `/tiles/...` to the tiles function's front and `/portal/...` to the built portal; everything
    else to the API's front. Locally the portal calls the API on its own origin (its `config.json`)."""

    def __init__(self, api: Callable, tiles: Callable, dist: Path = PORTAL_DIST) -> None:
        self._api, self._tiles, self._dist = api, tiles, dist
        self._static = SharedDataMiddleware(self._missing, {PORTAL_PREFIX: str(dist)}, cache=False)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(TILES_PREFIX):
            return self._tiles(environ, start_response)
        if path == PORTAL_PREFIX:
            return redirect(f"{PORTAL_PREFIX}/")(environ, start_response)
        if path == f"{PORTAL_PREFIX}/config.json":
            config = {"api": "", "baseLayer": None}
            return Response(json.dumps(config), content_type="application/json")(environ, start_response)
        if path == f"{PORTAL_PREFIX}/":
            environ = {**environ, "PATH_INFO": f"{PORTAL_PREFIX}/index.html"}
        if path.startswith(f"{PORTAL_PREFIX}/"):
            return self._static(environ, start_response)
        return self._api(environ, start_response)

    def _missing(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        hint = "" if (self._dist / "index.html").exists() else " (not built: run `make portal`)"
        return Response(f"Not found{hint}", status=404, content_type="text/plain")(environ, start_response)
