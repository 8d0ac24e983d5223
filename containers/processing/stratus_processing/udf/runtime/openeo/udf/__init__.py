"""The openeo client's UDF API (`openeo.udf`), as the sandbox provides it."""

from openeo.udf.debug import inspect
from openeo.udf.structured_data import StructuredData
from openeo.udf.udf_data import UdfData
from openeo.udf.xarraydatacube import XarrayDataCube


class OpenEoUdfException(Exception):
    pass


__all__ = ["OpenEoUdfException", "StructuredData", "UdfData", "XarrayDataCube", "inspect"]
