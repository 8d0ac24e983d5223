"""`GET /collections` with 10 remote collections configured: answered from the metadata cache, never from the
remote API.

The local system (`stratus_local`, in this process, on its embedded moto server) runs with a collections
configuration of 10 `stac-api` entries (the recorded Earth Search v1 Sentinel-2 L2A, Landsat C2 L2 and
Copernicus DEM documents under 10 ids) pointing at a local STAC API (`tests/support_stac_server.py`) that
answers each request after `LATENCY_S`: a slow remote. Once the start-up refresh has cached all 10, `REQUESTS`
sequential `GET /collections` over one keep-alive connection are timed (wall time per request, client side),
then the remote server is stopped and the same is timed again. Prints p50/p95/max per phase and the target
(p95 <= 100 ms). Run: `python -m benchmarks.collections_listing`.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

REQUESTS = 200
WARMUP = 5  # not timed
SOURCES = 10
LATENCY_S = 0.5  # per request of the remote API: a listing that waited on it would take >= 0.5 s
P95_TARGET_S = 0.100
REFRESH_WAIT_S = 60


def main() -> None:
    import requests  # noqa: PLC0415

    from stratus import aws  # noqa: PLC0415
    from stratus.adapters.s3_collections import S3CollectionsStore  # noqa: PLC0415
    from stratus_local.runtime import LocalOptions, LocalStratus  # noqa: PLC0415
    from tests.support_stac_server import REAL_DATA, earth_search_server  # noqa: PLC0415

    if not (REAL_DATA / "earth-search-v1" / "recordings.json").is_file():
        print(f"collections_listing: skipped, {REAL_DATA} is absent (the recorded documents ship in "
              "tests/fixtures/real/data/; STRATUS_REAL_DATA overrides)")
        return
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    recorded = ["sentinel-2-l2a", "landsat-c2-l2", "cop-dem-glo-30"]
    server = earth_search_server(REAL_DATA, latency_s=LATENCY_S)
    ids = [f"{recorded[i % 3]}-{i}" for i in range(SOURCES)]
    for collection_id, source in zip(ids, [recorded[i % 3] for i in range(SOURCES)]):
        server.collections[collection_id] = {**server.collections[source], "id": collection_id}
    config = {"collections": [{"id": cid, "kind": "stac-api", "url": server.api_url, "aliases": [cid.upper()]}
                              for cid in ids], "allowed_private_hosts": ["127.0.0.1"]}
    with tempfile.TemporaryDirectory() as tmp, server:
        config_file = Path(tmp) / "collections.json"
        config_file.write_text(json.dumps(config))
        system = LocalStratus(LocalOptions(port=0, with_demo_data=False, collections=config_file,
                                           reaper_interval_s=0)).start()
        try:
            session = requests.Session()
            url = f"{system.api_url}/openeo/1.2/collections"
            started = time.monotonic()
            # watched in S3, not through the API: a fresh API container memoises what it read for a minute
            cache = S3CollectionsStore(aws.client("s3"), system.settings.data_bucket, cache_seconds=0)
            while len(cache.get_many(ids)) < SOURCES:
                if time.monotonic() - started > REFRESH_WAIT_S:
                    raise RuntimeError("the start-up refresh did not cache every collection")
                time.sleep(0.5)
            print(f"collections_listing: {SOURCES} remote collections, remote API answering after "
                  f"{LATENCY_S * 1000:.0f} ms, {REQUESTS} sequential GET /collections")
            print(f"  start-up refresh cached all {SOURCES} within {time.monotonic() - started:.1f} s of the start")
            cached = session.get(url, timeout=30).json()["collections"]
            assert all(c["stratus:source"]["fetched_at"] for c in cached), "listed before the refresh"
            _report("remote up", _timed(session, url))
            server.__exit__(None, None, None)
            _report("remote down", _timed(session, url))
        finally:
            system.stop()


def _timed(session, url: str) -> list[float]:
    for _ in range(WARMUP):
        session.get(url, timeout=30).raise_for_status()
    seconds = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        assert len(response.json()["collections"]) == SOURCES
    return seconds


def _report(phase: str, seconds: list[float]) -> None:
    p95 = statistics.quantiles(seconds, n=20)[-1]
    verdict = "meets" if p95 <= P95_TARGET_S else "MISSES"
    print(f"  {phase:11s} p50 {statistics.median(seconds) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  "
          f"max {max(seconds) * 1000:6.1f} ms  ({verdict} the p95 target of {P95_TARGET_S * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
