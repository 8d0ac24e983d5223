"""What the sandboxed UDF process runs: this directory is the first entry of its `sys.path`, so the
`openeo` package here (a compatible shim of the client's `openeo.udf`) is the one a UDF imports."""
