"""Runs every benchmark in turn."""

from benchmarks import api_cold_start

for benchmark in (api_cold_start,):
    benchmark.main()
