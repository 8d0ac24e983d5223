"""Runs the official openeo-test-suite (PyPI `openeo-test-suite`) against the local system: `make conformance`.

`run` starts the system, prepares the suite's assets from `../shared/conformance/`, runs one pytest process per
module and prints the counts; `plugin` is loaded into those pytest processes (authentication fallback and the
documented skip list in `skips`).
"""
