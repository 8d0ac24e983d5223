"""The caller of every request is resolved once, before the route, by one middleware: routes are closed unless
marked public, each API refuses in its own format, and answers that need no route (unknown paths, CORS
preflights) are the same with or without credentials."""

from __future__ import annotations

import re
import sys

from stratus.domain import principal
from stratus.store.models import UserModel

from tests.api.test_order_api import Customers

OPENEO, ORDERS = "/openeo/1.2", "/api/v1"
# the only routes that serve anyone: discovery, logins, registration, documentation
PUBLIC_OPENEO_MODULES = {"routers.openeo.capabilities", "routers.openeo.credentials", "routers.openeo.collections"}
PUBLIC_ORDER_ROUTES = {("POST", "/auth/register"), ("POST", "/auth/register/verify"), ("POST", "/auth/token"),
                       ("POST", "/auth/password-reset"), ("POST", "/auth/password-reset/confirm"),
                       ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/<asset>")}


def served_routes(handler) -> list[tuple[str, str, str]]:
    """(method, rule, module of the route function) of every route the API serves."""
    resolver = sys.modules[handler.__module__].app
    return [(route.method, route.path, route.func.__module__)
            for route in resolver._static_routes + resolver._dynamic_routes]


def concrete(rule: str) -> str:
    return re.sub(r"<\w+>", "x-1", rule).replace(r"[\s\S]+", "a.txt")


def test_every_route_but_the_public_ones_needs_a_caller(api):
    public, closed = [], []
    for method, rule, module in served_routes(api.handler):
        response = api.request(method, concrete(rule), headers={"Content-Type": "application/json"})
        (closed if response.status == 401 else public).append((method, rule, module))
        if response.status == 401:
            assert response.json()["code"] == "AuthenticationRequired", (method, rule)
    assert len(closed) >= 35
    for method, rule, module in public:
        if rule.startswith(ORDERS):
            assert (method, rule[len(ORDERS):]) in PUBLIC_ORDER_ROUTES, (method, rule)
        else:
            assert module in PUBLIC_OPENEO_MODULES, (method, rule)


def test_unknown_paths_and_preflights_are_answered_without_a_caller(api):
    for prefix in (OPENEO, ORDERS):
        assert api.get(f"{prefix}/nothing-here").status == 404
        preflight = api.request("OPTIONS", f"{prefix}/jobs" if prefix == OPENEO else f"{prefix}/orders",
                                headers={"Origin": "https://editor.openeo.org",
                                         "Access-Control-Request-Method": "GET"})
        assert preflight.status == 204 and "access-control-allow-methods" in preflight.headers


def test_openeo_trusts_a_recent_read_of_the_account_the_order_api_reads_it_every_time(api, monkeypatch):
    monkeypatch.setattr(principal, "ACCOUNT_CHECK_TTL_S", 3600.0)
    customers = Customers(api)
    customers.add("cus-tina")
    openeo = customers.openeo_headers("cus-tina")
    assert api.get(f"{OPENEO}/jobs", headers=openeo).status == 200
    UserModel("cus-tina").update(actions=[UserModel.active.set(False)])  # deactivated behind the API's back
    assert api.get(f"{OPENEO}/jobs", headers=openeo).status == 200  # this container's read is recent
    refused = customers.request("GET", "/auth/me", "cus-tina")
    assert refused.status == 403 and refused.json()["code"] == "CustomerInactive"
    # that fresh read is the container's read for both APIs now
    assert api.get(f"{OPENEO}/jobs", headers=openeo).json()["code"] == "TokenInvalid"
