"""Where the openEO API lives: its path prefix and public URL."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from routers.shared.context import root_url

OPENEO_PREFIX = "/openeo/1.2"


def openeo_url(router: BaseRouter) -> str:
    return root_url(router) + OPENEO_PREFIX
