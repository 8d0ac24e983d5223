"""Runs every benchmark in turn (`python -m benchmarks`; one alone: `python -m benchmarks.<name>`)."""

from benchmarks import api_cold_start, collections_listing, ndvi_time_mean, remote_read, tiles

for benchmark in (api_cold_start, collections_listing, ndvi_time_mean, remote_read, tiles):
    benchmark.main()
