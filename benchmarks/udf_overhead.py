"""What the UDF sandbox costs: a UDF call on one tile against the same computation in the engine's
process.

Input: a random float64 cube of 6 dates × 2 bands × 1024² px (one tile of tiled execution; `--quick`:
256² px). The computation: each pixel's series minus its mean over t (xarray), once as plain Python
in this process and once as a UDF through `sandbox.run_udf_code` (a new interpreter, its imports, the
filters, the cube out and back as files). Prints the median wall time of each, the difference (the
sandbox's overhead per call) and the UDF processes' CPU seconds (RUSAGE_CHILDREN), and checks both
give the same values. Run: `python -m benchmarks.udf_overhead [--quick]`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import pandas as pd
import xarray as xr

CODE = """
from openeo.udf import XarrayDataCube

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    array = cube.get_array()
    return XarrayDataCube(array - array.mean("t", skipna=True))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 256 px tile, 2 repeats")
    args = parser.parse_args(argv)
    from stratus_processing.udf.sandbox import run_udf_code

    size, repeats = (256, 2) if args.quick else (1024, 5)
    values = np.random.default_rng(1).uniform(0, 1, (6, 2, size, size))
    cube = xr.DataArray(values, dims=("t", "bands", "y", "x"),
                        coords={"t": pd.date_range("2024-06-01", periods=6, freq="5D"), "bands": ["B04", "B08"]})

    def in_process():
        return cube - cube.mean("t", skipna=True)

    def sandboxed():
        return run_udf_code(CODE, cube, {}).cube

    timings, results = {}, {}
    for name, function in (("in process", in_process), ("sandboxed UDF", sandboxed)):
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            results[name] = function()
            runs.append(time.perf_counter() - started)
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime) / repeats
        timings[name] = statistics.median(runs)
        print(f"{name:>14}: {timings[name]:7.3f} s per call (median of {repeats}); child CPU {child_cpu:6.3f} s")
    np.testing.assert_allclose(results["sandboxed UDF"].values, results["in process"].values)
    print(f"sandbox overhead per call on a {size}² px tile of 6 dates × 2 bands: "
          f"{timings['sandboxed UDF'] - timings['in process']:.3f} s; outputs agree")


if __name__ == "__main__":
    main()
