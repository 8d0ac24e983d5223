"""`SourceFetcher`: reads a configured collection's STAC document from its source.

https/http through the outbound guard (`stratus.outbound`: resolved once, checked against private,
loopback and link-local addresses, pinned), with the deployment's allow-list plus the configuration's
`allowed_private_hosts`; redirects are followed a few times, each checked again. Headers from the entry's
`auth_secret` (a Secrets Manager secret holding a JSON object of headers) go only to the source's host.
s3:// documents (static catalogs) are read with the function's role.
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stratus.collections_config import STAC_CATALOG, CollectionSource
from stratus.domain.collection_metadata import source_document_url
from stratus.domain.collection_refresh import SourceUnavailable
from stratus.outbound import AllowList, OutboundFailed, OutboundGuard, OutboundRefused, Timeouts

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # Earth Search's largest collection document is 31 KB
MAX_REDIRECTS = 3
MAX_CATALOG_CHILDREN = 100  # children of a static catalog looked at for the configured collection
TIMEOUTS = Timeouts(connect_s=3.0, read_s=10.0, budget_s=20.0)
_REDIRECTS = {301, 302, 303, 307, 308}


class GuardedSourceFetcher:
    def __init__(self, base_allow_list: str, secrets_client: Callable[[], Any], s3_client: Callable[[], Any],
                 *, guard_factory: Callable[[AllowList], OutboundGuard] = OutboundGuard) -> None:
        """`base_allow_list`: the deployment's `allowed_private_hosts` setting; the clients are made on use."""
        self._base_allow_list = base_allow_list
        self._secrets_client = secrets_client
        self._s3_client = s3_client
        self._guard_factory = guard_factory

    def fetch(self, source: CollectionSource, *, allowed_private_hosts: Sequence[str]) -> dict[str, Any]:
        url = source_document_url(source)
        hosts = [h for h in self._base_allow_list.split(",") if h.strip()] + list(allowed_private_hosts)
        read = _Reader(self._guard_factory(AllowList.parse(hosts)), self._headers(source), url,
                       self._s3_client)
        document = read(url)
        if source.kind == STAC_CATALOG and document.get("type") == "Catalog":
            document = self._find_in_catalog(read, url, document, source.source_collection)
        if document.get("type", "Collection") != "Collection" or not isinstance(document.get("id"), str):
            raise SourceUnavailable("the document is not a STAC collection")
        return document

    @staticmethod
    def _find_in_catalog(read: _Reader, url: str, catalog: Mapping[str, Any], wanted: str) -> dict[str, Any]:
        """The collection `wanted` among a static catalog's children (one level, as the config names it)."""
        children = [link["href"] for link in catalog.get("links") or []
                    if isinstance(link, Mapping) and link.get("rel") == "child" and isinstance(link.get("href"), str)]
        for href in children[:MAX_CATALOG_CHILDREN]:
            child = read(_join(url, href))
            if child.get("type") == "Collection" and child.get("id") == wanted:
                return child
        raise SourceUnavailable(f"the catalog has no child collection {wanted!r}")

    def _headers(self, source: CollectionSource) -> dict[str, str]:
        return auth_headers(source, self._secrets_client)


def auth_headers(source: CollectionSource, secrets_client: Callable[[], Any]) -> dict[str, str]:
    """The HTTP headers of the entry's `auth_secret` (none without one); raises `SourceUnavailable`
    without the secret's value."""
    if not source.auth_secret:
        return {}
    try:
        value = secrets_client().get_secret_value(SecretId=source.auth_secret)["SecretString"]
        headers = json.loads(value)
    except Exception as error:  # noqa: BLE001 - any failure means: no document this time, said without the value
        raise SourceUnavailable(f"the auth secret {source.auth_secret!r} could not be read "
                                f"({type(error).__name__})") from None
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise SourceUnavailable(f"the auth secret {source.auth_secret!r} is not a JSON object of headers")
    return {str(k): v for k, v in headers.items()}


class _Reader:
    """Reads JSON documents of one source: auth headers only for the source's own host."""

    def __init__(self, guard: OutboundGuard, headers: Mapping[str, str], origin: str,
                 s3_client: Callable[[], Any]) -> None:
        self._guard = guard
        self._headers = headers
        self._origin_host = urllib.parse.urlsplit(origin).netloc
        self._s3_client = s3_client

    def __call__(self, url: str) -> dict[str, Any]:
        body = self._s3(url) if url.startswith("s3://") else self._http(url)
        try:
            document = json.loads(body)
        except ValueError:
            raise SourceUnavailable("the response is not JSON") from None
        if not isinstance(document, dict):
            raise SourceUnavailable("the response is not a JSON object")
        return document

    def _http(self, url: str) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept": "application/json"}
            if urllib.parse.urlsplit(url).netloc == self._origin_host:
                headers.update(self._headers)
            try:
                response = self._guard.request("GET", url, headers=headers, timeouts=TIMEOUTS,
                                               max_body_bytes=MAX_DOCUMENT_BYTES)
            except OutboundRefused as refused:
                raise SourceUnavailable(f"refused: {refused}") from None
            except OutboundFailed as failed:
                raise SourceUnavailable("timed out" if failed.timed_out else "could not connect") from None
            if response.status in _REDIRECTS and response.headers.get("Location"):
                url = urllib.parse.urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise SourceUnavailable(f"HTTP {response.status}")
            if response.truncated:
                raise SourceUnavailable(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
            return response.body
        raise SourceUnavailable(f"more than {MAX_REDIRECTS} redirects")

    def _s3(self, url: str) -> bytes:
        parsed = urllib.parse.urlsplit(url)
        client = self._s3_client()
        try:
            obj = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        except Exception as error:  # noqa: BLE001 - botocore's errors: access, missing key, network
            raise SourceUnavailable(f"s3 read failed ({type(error).__name__})") from None
        if obj.get("ContentLength", 0) > MAX_DOCUMENT_BYTES:
            raise SourceUnavailable(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
        return obj["Body"].read()


def _join(base: str, href: str) -> str:
    if urllib.parse.urlsplit(href).scheme:
        return href
    if base.startswith("s3://"):
        parsed = urllib.parse.urlsplit(base)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parsed.path), href))
        return f"s3://{parsed.netloc}{path}"
    return urllib.parse.urljoin(base, href)
