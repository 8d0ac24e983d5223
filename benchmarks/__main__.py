"""Runs every benchmark in turn."""

from benchmarks import api_cold_start, ndvi_time_mean, remote_read

for benchmark in (api_cold_start, ndvi_time_mean, remote_read):
    benchmark.main()
