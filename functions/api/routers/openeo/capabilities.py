"""Discovery: `/.well-known/openeo`, capabilities, `/processes`, `/file_formats`."""

from __future__ import annotations


from routers.openeo.context import openeo_url
from routers.shared.caller import PublicRouter
from routers.shared.context import backend, root_url
from stratus import __version__, resources
from stratus.domain.processes import predefined_processes
from stratus.file_formats import FILE_FORMATS
from stratus.udf_runtimes import udf_runtimes

API_VERSION = "1.2.0"

router = PublicRouter()
well_known = PublicRouter()

# (path, methods) as listed in the capabilities document; keep in step with the routers.
ENDPOINTS = [
    ("/", ["GET"]),
    ("/conformance", ["GET"]),
    ("/udf_runtimes", ["GET"]),
    ("/service_types", ["GET"]),
    ("/services", ["GET", "POST"]),
    ("/services/{service_id}", ["GET", "PATCH", "DELETE"]),
    ("/credentials/basic", ["GET"]),
    ("/credentials/oidc", ["GET"]),
    ("/me", ["GET"]),
    ("/collections", ["GET"]),
    ("/collections/{collection_id}", ["GET"]),
    ("/collections/{collection_id}/queryables", ["GET"]),
    ("/processes", ["GET"]),
    ("/file_formats", ["GET"]),
    ("/result", ["POST"]),
    ("/jobs", ["GET", "POST"]),
    ("/jobs/{job_id}", ["GET", "PATCH", "DELETE"]),
    ("/jobs/{job_id}/results", ["GET", "POST", "DELETE"]),
    ("/jobs/{job_id}/results/items/{item_id}", ["GET"]),
    ("/jobs/{job_id}/estimate", ["GET"]),
    ("/jobs/{job_id}/logs", ["GET"]),
    ("/files", ["GET"]),
    ("/files/{path}", ["GET", "PUT", "DELETE"]),
    ("/process_graphs", ["GET"]),
    ("/process_graphs/{process_graph_id}", ["GET", "PUT", "DELETE"]),
    ("/validation", ["POST"]),
]

# The same list is `conformsTo` in the capabilities document (the spec requires them to be equal).
CONFORMANCE_CLASSES = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
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
        "conformsTo": CONFORMANCE_CLASSES,
        "endpoints": [{"path": path, "methods": methods} for path, methods in ENDPOINTS],
        "billing": {"currency": resources.BILLING_CURRENCY},
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json"},
            {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
            {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
            {"rel": "version-history", "href": f"{root_url(router)}/.well-known/openeo",
             "type": "application/json"},
        ],
    }


@router.get("/conformance")
def list_conformance_classes() -> dict:
    return {"conformsTo": CONFORMANCE_CLASSES}


@router.get("/udf_runtimes")
def list_udf_runtimes() -> dict:
    """Python, sandboxed (`stratus.udf_runtimes`), with the libraries a UDF can import."""
    return udf_runtimes()


@router.get("/service_types")
def list_service_types() -> dict:
    """XYZ map tiles of finished jobs' results."""
    from stratus.domain.web_services import SERVICE_TYPES

    return SERVICE_TYPES


@router.get("/processes")
def list_processes() -> dict:
    return {"processes": list(predefined_processes()), "links": []}


@router.get("/file_formats")
def list_file_formats() -> dict:
    return FILE_FORMATS
