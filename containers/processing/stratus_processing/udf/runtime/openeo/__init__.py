"""Stratus's stand-in for the openeo client inside the UDF sandbox: only `openeo.udf`, the part a UDF
uses, API-compatible with openeo 0.53 (module paths included, since the client matches UDF
functions by their annotations' qualified names). The client itself is not installed in the engine:
it would bring geopandas, requests and pystac into the image for ~300 lines of API."""

__version__ = "0.53.0"  # the client version whose `openeo.udf` API this shim follows
