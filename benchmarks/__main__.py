"""Runs every benchmark in turn (`python -m benchmarks`; one alone: `python -m benchmarks.<name>`)."""

from benchmarks import (api_cold_start, catalogue, collections_listing, engine_floor, fanout_workers, ndvi_time_mean,
                        remote_read, sync_result, tiles, udf_overhead)

for benchmark in (api_cold_start, collections_listing, ndvi_time_mean, engine_floor, sync_result, remote_read,
                  udf_overhead, fanout_workers, tiles):
    benchmark.main()
catalogue.main([])  # its own arguments (`--quick`) are not `make bench`'s
