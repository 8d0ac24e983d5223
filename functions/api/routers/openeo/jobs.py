"""Batch jobs: `/jobs`, `/jobs/{job_id}`, `/jobs/{job_id}/results`,
`/jobs/{job_id}/results/items/{item_id}`, `/jobs/{job_id}/estimate`, `/jobs/{job_id}/logs`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.shared.caller import caller
from routers.shared.context import backend, json_body, page_size
from stratus import resources
from stratus.errors import BadRequestException
from stratus.events import LogLevel, isoformat_z, utcnow

if TYPE_CHECKING:
    from stratus.domain.jobs import Job

router = Router()



def _iso(value) -> str | None:
    return isoformat_z(value) if value else None


def job_metadata(job: Job, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.job_id,
        "title": job.title,
        "description": job.description,
        "status": job.status.value,
        "created": _iso(job.created),
        "updated": _iso(job.updated),
    }
    if job.progress is not None:
        data["progress"] = job.progress
    if job.plan:
        data["plan"] = job.plan
    if job.budget is not None:
        data["budget"] = job.budget
    if job.costs is not None:
        data["costs"] = job.costs
    if full:
        data["process"] = job.process
        data["queued"] = _iso(job.queued)
        data["started"] = _iso(job.started)
        data["finished"] = _iso(job.finished)
        if job.usage:
            data["usage"] = job.usage
        if job.reason:
            data["reason"] = job.reason
        if job.job_options:
            # openEO 1.2 has no field for them: openeo-python-driver's request field, shown as given
            data["job_options"] = job.job_options
    return data



@router.post("/jobs")
def create_job() -> Response:
    job = backend().jobs.create_job(caller(router).user_id, json_body(router))
    return Response(
        status_code=201,
        headers={"Location": f"{openeo_url(router)}/jobs/{job.job_id}", "OpenEO-Identifier": job.job_id},
        body="",
    )


@router.get("/jobs")
def list_jobs() -> dict:
    limit = page_size(router)
    after = router.current_event.get_query_string_value("after", None)
    jobs, next_token = backend().jobs.list_jobs(caller(router).user_id, limit, after)
    links = []
    if next_token:
        links.append({"rel": "next", "href": f"{openeo_url(router)}/jobs?limit={limit}&after={next_token}"})
    return {"jobs": [job_metadata(job, full=False) for job in jobs], "links": links}


@router.get("/jobs/<job_id>")
def describe_job(job_id: str) -> dict:
    return job_metadata(backend().jobs.get_job(caller(router).user_id, job_id), full=True)


@router.patch("/jobs/<job_id>")
def update_job(job_id: str) -> Response:
    backend().jobs.update_job(caller(router).user_id, job_id, json_body(router))
    return Response(status_code=204, body="")


@router.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    backend().jobs.delete_job(caller(router).user_id, job_id)
    return Response(status_code=204, body="")


@router.delete("/jobs/<job_id>/results")
def stop_job(job_id: str) -> Response:
    backend().jobs.stop_job(caller(router).user_id, job_id)
    return Response(status_code=204, body="")


@router.get("/jobs/<job_id>/estimate")
def estimate_job(job_id: str) -> dict:
    estimate = backend().jobs.estimate_job(caller(router).user_id, job_id)
    return {
        "costs": estimate.costs,
        "duration": f"PT{estimate.duration_s}S",
        "size": estimate.size_bytes,
        "downloads_included": None,  # downloads are not charged separately, nor promised free
        "expires": _iso(utcnow() + timedelta(seconds=resources.ESTIMATE_VALIDITY_S)),
    }


@router.post("/jobs/<job_id>/results")
def start_job(job_id: str) -> Response:
    backend().jobs.start_job(caller(router).user_id, job_id)
    return Response(status_code=202, body="")


@router.get("/jobs/<job_id>/results")
def list_results(job_id: str) -> dict:
    from stratus.domain import results

    job = backend().jobs.get_job(caller(router).user_id, job_id)
    settings = backend().settings
    return results.job_results(job, backend().results, openeo_url(router), settings.presign_expiry_s,
                               partial=_flag(router.current_event.get_query_string_value("partial", None), "partial"))


@router.get("/jobs/<job_id>/results/items/<item_id>")
def get_result_item(job_id: str, item_id: str) -> Response:
    from stratus.domain import results

    job = backend().jobs.get_job(caller(router).user_id, job_id)
    item = results.job_result_item(job, backend().results, openeo_url(router), item_id,
                                   backend().settings.presign_expiry_s)
    return Response(status_code=200, content_type=results.ITEM_MEDIA_TYPE, body=json.dumps(item))


def _flag(raw: str | None, name: str) -> bool:
    """A boolean query parameter; present without a value (`?partial`) means true."""
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("", "true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise BadRequestException(reason=f"`{name}` must be true or false")


@router.get("/jobs/<job_id>/logs")
def list_logs(job_id: str) -> dict:
    from stratus.domain.logs import levels_at_least

    backend().jobs.get_job(caller(router).user_id, job_id)  # ownership check
    limit = page_size(router)
    offset = router.current_event.get_query_string_value("offset", None)
    level = router.current_event.get_query_string_value("level", None) or None  # `?level=` means the default
    if level is not None and level not in {lvl.value for lvl in LogLevel}:
        raise BadRequestException(reason="`level` must be one of error, warning, info, debug")
    entries = backend().logs.list(job_id, offset, limit, levels_at_least(level))
    links = []
    if len(entries) == limit:
        links.append({"rel": "next",
                      "href": f"{openeo_url(router)}/jobs/{job_id}/logs?limit={limit}&offset={entries[-1].log_id}"
                             + (f"&level={level}" if level else "")})
    return {"level": level or "debug", "logs": [e.to_openeo() for e in entries],
            "links": links}
