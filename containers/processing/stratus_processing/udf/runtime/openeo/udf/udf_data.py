"""`UdfData`: what a generic UDF (`apply_udf_data`) receives: the data cubes and the user context."""

from __future__ import annotations

from openeo.udf.structured_data import StructuredData
from openeo.udf.xarraydatacube import XarrayDataCube


class UdfData:
    def __init__(self, proj=None, datacube_list=None, feature_collection_list=None,
                 structured_data_list=None, user_context=None):
        self._proj = proj
        self._datacube_list = list(datacube_list or [])
        self._feature_collection_list = list(feature_collection_list or [])
        self._structured_data_list = list(structured_data_list or [])
        self._user_context = user_context or {}

    def __repr__(self) -> str:
        return f"<UdfData datacube_list:{self._datacube_list!r}>"

    @property
    def user_context(self) -> dict:
        return self._user_context

    def get_datacube_list(self) -> list[XarrayDataCube]:
        return self._datacube_list

    def set_datacube_list(self, datacube_list) -> None:
        self._datacube_list = list(datacube_list or [])

    datacube_list = property(get_datacube_list, set_datacube_list)

    def get_feature_collection_list(self) -> list:
        return self._feature_collection_list

    def set_feature_collection_list(self, feature_collection_list) -> None:
        self._feature_collection_list = list(feature_collection_list or [])

    feature_collection_list = property(get_feature_collection_list, set_feature_collection_list)

    def get_structured_data_list(self) -> list[StructuredData]:
        return self._structured_data_list

    def set_structured_data_list(self, structured_data_list) -> None:
        self._structured_data_list = list(structured_data_list or [])

    structured_data_list = property(get_structured_data_list, set_structured_data_list)
