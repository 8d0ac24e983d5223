"""Python UDFs (`run_udf`): user code run in a sandboxed child process (`sandbox`), which sees the
openeo client's UDF API through a compatible shim (`runtime/openeo/udf`)."""
