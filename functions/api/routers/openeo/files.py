"""The user workspace: `/files` and `/files/{path}` (list, download, upload, delete).

`{path}` may contain slashes, which a powertools `<param>` never matches, so the item routes are
registered as a regex (`_ITEM_ROUTE`) and the path is read from the request, after the `/files/`
prefix. API Gateway hands the path to the function URL-decoded; the domain validates it
(`FilePathInvalid`) before any key is built from it.

Size limits: an upload is the body of one Lambda invocation (API Gateway: 10 MB; Lambda: 6 MB,
base64-encoded), so bodies over `resources.FILES_MAX_UPLOAD_BYTES` are refused with
`FileSizeExceeded`; bodies over the gateway's limits are refused by API Gateway before they reach
this function. Downloads over `resources.FILES_INLINE_DOWNLOAD_BYTES` are redirected to S3.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import OPENEO_PREFIX, openeo_url
from routers.shared.caller import caller
from routers.shared.context import backend, page_size

if TYPE_CHECKING:
    from stratus.domain.files import UserFile

router = Router()

_ITEM_PREFIX = f"{OPENEO_PREFIX}/files/"
# a regex route: any rest of the URL, newlines included, so every path reaches the validation
_ITEM_ROUTE = r"/files/[\s\S]+"


def file_metadata(file: UserFile) -> dict:
    return {"path": file.path, "size": file.size,
            "modified": file.modified.isoformat(timespec="seconds").replace("+00:00", "Z")}


def _file_path() -> str:
    """The `{path}` of `/files/{path}`, as API Gateway decoded it."""
    path = router.current_event.path
    return path[len(_ITEM_PREFIX):] if path.startswith(_ITEM_PREFIX) else path.partition("/files/")[2]



def _body() -> bytes:
    event = router.current_event
    raw = event.get("body") or ""
    return base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")


@router.get("/files")
def list_files() -> dict:
    limit = page_size(router)
    after = router.current_event.get_query_string_value("after", None)
    files, next_after = backend().files.list_files(caller(router).user_id, limit, after)
    links = []
    if next_after:
        links.append({"rel": "next", "href": f"{openeo_url(router)}/files?limit={limit}&after={quote(next_after)}",
                      "type": content_types.APPLICATION_JSON})
    return {"files": [file_metadata(f) for f in files], "links": links}


@router.get(_ITEM_ROUTE)
def download_file() -> Response:
    download = backend().files.download(caller(router).user_id, _file_path())
    if download.redirect_url:
        # too large for a Lambda response: the client follows the redirect to S3
        return Response(status_code=303, headers={"Location": download.redirect_url}, body="")
    return Response(status_code=200, content_type="application/octet-stream", body=download.body)


@router.put(_ITEM_ROUTE)
def upload_file() -> dict:
    return file_metadata(backend().files.upload(caller(router).user_id, _file_path(), _body()))


@router.delete(_ITEM_ROUTE)
def delete_file() -> Response:
    backend().files.delete(caller(router).user_id, _file_path())
    return Response(status_code=204, body="")
