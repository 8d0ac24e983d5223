"""The caller of a request, resolved once, before the route runs, by one Powertools middleware.

Every route needs a caller unless it is marked `@public` or belongs to a `PublicRouter`, so a new route is
closed until someone opens it.
Each API has its own caller policy (`routers/openeo/caller.py`, `routers/orders/caller.py`): how it reads
`Authorization` and which of its errors a refusal becomes. Routes read the result with `caller(router)`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Router

from routers.shared.context import header
from stratus.domain.principal import Principal

CallerPolicy = Callable[[str | None], Principal]  # the Authorization header -> the caller, or the API's error
Route = TypeVar("Route", bound=Callable[..., Any])

_PRINCIPAL = "principal"  # the key in the resolver's per-request context
_PUBLIC = "_serves_anyone"


def public(route: Route) -> Route:
    """Marks a route that needs no caller (discovery, logins, registration, documentation). Put it below
    the `@router.get(...)` line."""
    setattr(route, _PUBLIC, True)
    return route


class PublicRouter(Router):
    """A router whose every route is `@public` (discovery, documentation, logins)."""

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Callable[[Route], Route]:
        register = super().route(rule, method, *args, **kwargs)
        return lambda func: register(public(func))


def caller(router: BaseRouter) -> Principal:
    """The caller of this request (only in routes that are not `@public`)."""
    return router.context[_PRINCIPAL]


def caller_middleware(policies: Mapping[str, CallerPolicy]) -> Callable[..., Any]:
    """A middleware for `APIGatewayRestResolver.use`: resolves the caller of every non-public route with the
    policy of the API whose path prefix the request has."""

    def resolve_caller(app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
        route = app.context.get("_route")  # the matched route: Powertools puts it there before middlewares run
        if route is not None and _needs_caller(route.func):
            path = app.current_event.path or ""
            policy = next((policy for prefix, policy in policies.items()
                           if path == prefix or path.startswith(f"{prefix}/")), None)
            if policy is None:
                raise LookupError(f"no caller policy covers {path}; mark the route @public or add a policy")
            app.append_context(**{_PRINCIPAL: policy(header(app, "Authorization"))})
        return next_middleware(app)

    return resolve_caller


def _needs_caller(route_function: Callable[..., Any]) -> bool:
    """Every route of our routers unless public. Not Powertools' own stand-in route for unknown paths, CORS
    preflights and 405s: those are answered alike with or without credentials."""
    return route_function.__module__.startswith("routers.") and not getattr(route_function, _PUBLIC, False)
