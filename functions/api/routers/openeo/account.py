"""Account: `GET /me`, who the caller is and what their workspace holds."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.shared.caller import caller
from routers.shared.context import backend

router = Router()


@router.get("/me")
def describe_account() -> dict:
    user_id = caller(router).user_id
    user = backend().auth.describe_user(user_id)
    usage = backend().files.usage(user_id)
    base = openeo_url(router)
    return {
        "user_id": user.user_id,
        "name": user.name or user.user_id,
        "roles": user.roles,
        "storage": {"free": usage.free, "quota": usage.quota},
        "budget": None,  # no per-user budget yet; jobs may carry their own
        "links": [{"rel": "related", "href": f"{base}/files", "title": "User workspace"},
                  {"rel": "related", "href": f"{base}/jobs", "title": "Batch jobs"}],
    }
