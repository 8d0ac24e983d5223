"""Discovery: `/.well-known/openeo`, capabilities, `/processes`, `/file_formats`."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.context import backend, openeo_url, root_url
from stratus import __version__
from stratus.domain.processes import predefined_processes
from stratus.file_formats import FILE_FORMATS

API_VERSION = "1.2.0"

router = Router()
well_known = Router()

# (path, methods) as listed in the capabilities document; keep in step with the routers.
ENDPOINTS = [
    ("/", ["GET"]),
    ("/credentials/basic", ["GET"]),
    ("/collections", ["GET"]),
    ("/collections/{collection_id}", ["GET"]),
    ("/processes", ["GET"]),
    ("/file_formats", ["GET"]),
    ("/result", ["POST"]),
    ("/jobs", ["GET", "POST"]),
    ("/jobs/{job_id}", ["GET"]),
    ("/jobs/{job_id}/results", ["GET", "POST"]),
    ("/jobs/{job_id}/logs", ["GET"]),
]

@well_known.get("/.well-known/openeo")
def get_well_known() -> dict:
    return {"versions": [{"url": f"{root_url(well_known)}/openeo/1.2/", "api_version": API_VERSION,
                          "production": False}]}


@router.get("/")
def get_capabilities() -> dict:
    base = openeo_url(router)
    return {
        "api_version": API_VERSION,
        "backend_version": __version__,
        "stac_version": "1.0.0",
        "type": "Catalog",
        "id": "stratus",
        "title": backend().settings.backend_title,
        "description": "Stratus: a serverless openEO back-end on AWS Lambda, Step Functions and AWS Batch.",
        "production": False,
        "endpoints": [{"path": path, "methods": methods} for path, methods in ENDPOINTS],
        "billing": {"currency": None},
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json"},
            {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
            {"rel": "version-history", "href": f"{root_url(router)}/.well-known/openeo",
             "type": "application/json"},
        ],
    }


@router.get("/processes")
def list_processes() -> dict:
    return {"processes": list(predefined_processes()), "links": []}


@router.get("/file_formats")
def list_file_formats() -> dict:
    return FILE_FORMATS
