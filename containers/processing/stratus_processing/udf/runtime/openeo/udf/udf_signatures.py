"""The UDF signatures the sandbox recognises (as the client's `openeo.udf.udf_signatures`): see
`openeo.udf.run_code.run_udf_code` for how the function is found."""
