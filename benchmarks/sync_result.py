"""The synchronous `POST /result` of the demo NDVI graph on the local system, warm (issue 14: p50 <= 0.3 s).

The graph is the one `tests/e2e/test_sync_result.py` checks: NDVI over the Bolzano box for June 2022, mean over
time, GTiff. The first request is the cold one (it pays the engine's imports and the first catalogue search);
the next `--runs` are timed and their median (p50) is printed beside the cold time. Run on a quiet machine:
`python -m benchmarks.sync_result` (starts its own local system); `--quick` for 5 warm requests; `--url` and
`--password` against a system already running (e.g. one started under a profiler:
`py-spy record -o sync.svg -- python -m stratus_local --port 8000`).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import time

import requests

COLLECTION = "sentinel-2-l2a-demo"
BBOX = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]
TARGET_S = 0.3
RUNS = 30


def demo_ndvi() -> dict:
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "spatial_extent": BBOX, "temporal_extent": JUNE, "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"},
                 "result": True},
    }}}


def bearer(url: str, user: str, password: str) -> str:
    response = requests.get(f"{url}/credentials/basic", auth=(user, password), timeout=30)
    response.raise_for_status()
    return f"Bearer basic//{response.json()['access_token']}"


def timed_request(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.post(f"{url}/result", json=demo_ndvi(), timeout=60)
    seconds = time.perf_counter() - started
    if response.status_code != 200 or not response.content.startswith((b"II*\x00", b"MM\x00*")):
        raise RuntimeError(f"POST /result answered {response.status_code}: {response.text[:500]}")
    return seconds


def measure(url: str, password: str, runs: int) -> tuple[float, list[float]]:
    with requests.Session() as session:
        session.headers["Authorization"] = bearer(url, "demo", password)
        cold = timed_request(session, url)
        return cold, [timed_request(session, url) for _ in range(runs)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_result", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 warm requests")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--url", help="the openEO root of a running local system (default: start one)")
    parser.add_argument("--password", help="the demo user's password on that system")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs
    if args.url:
        system = contextlib.nullcontext((args.url.rstrip("/"), []))
        password = args.password
    else:
        from conformance.run import local_system  # noqa: PLC0415 - only when this benchmark starts its own

        password = secrets.token_urlsafe(12)
        system = local_system(password)
    with system as (url, _):
        if not args.url:
            url = f"{url.rstrip('/')}/openeo/1.2"  # the started system gives its root
        cold, warm = measure(url, password, runs)
    p50 = statistics.median(warm)
    print(f"sync_result: demo NDVI (2 bands, June 2022, Bolzano box) POST /result: cold {cold:.2f} s, warm p50 "
          f"{p50:.3f} s, p90 {statistics.quantiles(warm, n=10)[-1] if len(warm) > 1 else p50:.3f} s over {runs} "
          f"requests (target p50 <= {TARGET_S} s){' (--quick: indicative only)' if args.quick else ''}")


if __name__ == "__main__":
    main()
