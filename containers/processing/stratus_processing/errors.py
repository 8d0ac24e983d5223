"""Process-specific openEO errors and the node trail attached to any error raised while evaluating.

The API-level error classes live in `stratus.errors`; the ones here are the exceptions the openEO
process specs declare per process (`exceptions` of e.g. load_collection.json), which only the
processing raises. Codes and messages follow those specs.
"""

from __future__ import annotations

from typing import Any

from stratus.errors import OpenEOApiException


class NoDataAvailableException(OpenEOApiException):
    status_code, code = 400, "NoDataAvailable"
    message_template = "There is no data available for the given extents."


class TemporalExtentEmptyException(OpenEOApiException):
    status_code, code = 400, "TemporalExtentEmpty"
    message_template = (
        "The temporal extent is empty. The second instant in time must always be greater/later than the first "
        "instant in time."
    )


class DimensionNotAvailableException(OpenEOApiException):
    status_code, code = 400, "DimensionNotAvailable"
    message_template = "A dimension with the specified name does not exist: '{dimension}'."


class DimensionAmbiguousException(OpenEOApiException):
    status_code, code = 400, "DimensionAmbiguous"
    message_template = "dimension of type `bands` is not available or is ambiguous."


class NirBandAmbiguousException(OpenEOApiException):
    status_code, code = 400, "NirBandAmbiguous"
    message_template = "The NIR band can't be resolved, please specify the specific NIR band name."


class RedBandAmbiguousException(OpenEOApiException):
    status_code, code = 400, "RedBandAmbiguous"
    message_template = "The red band can't be resolved, please specify the specific red band name."


class BandExistsException(OpenEOApiException):
    status_code, code = 400, "BandExists"
    message_template = "A band with the specified target name exists: '{band}'."


class ArrayElementNotAvailableException(OpenEOApiException):
    status_code, code = 400, "ArrayElementNotAvailable"
    message_template = "The array has no element with the specified index or label."


class ArrayElementParameterMissingException(OpenEOApiException):
    status_code, code = 400, "ArrayElementParameterMissing"
    message_template = "The process `array_element` requires either the `index` or `labels` parameter to be set."


class ArrayElementParameterConflictException(OpenEOApiException):
    status_code, code = 400, "ArrayElementParameterConflict"
    message_template = (
        "The process `array_element` only allows that either the `index` or the `labels` parameter is set.")


class ArrayNotLabeledException(OpenEOApiException):
    status_code, code = 400, "ArrayNotLabeled"
    message_template = (
        "The array is not a labeled array, but the `label` parameter is set. Use the `index` instead."
    )


class FormatUnsuitableException(OpenEOApiException):
    status_code, code = 400, "FormatUnsuitable"
    message_template = "Data can't be transformed into the requested output format: {reason}"


class DataCubeEmptyException(OpenEOApiException):
    status_code, code = 400, "DataCubeEmpty"
    message_template = "The file format doesn't support storing empty data cubes."



# --- dimensions, labels and combining cubes (cubes.py, dimensions.py, filters.py, temporal.py, combine.py)

class DimensionExistsException(OpenEOApiException):
    status_code, code = 400, "DimensionExists"
    message_template = "A dimension with the specified name already exists: '{dimension}'."


class DimensionLabelCountMismatchException(OpenEOApiException):
    status_code, code = 400, "DimensionLabelCountMismatch"
    message_template = "The number of dimension labels exceeds one, which requires a reducer."


class DimensionMissingException(OpenEOApiException):
    status_code, code = 400, "DimensionMissing"
    message_template = "A band dimension is missing."


class TooManyDimensionsException(OpenEOApiException):
    status_code, code = 400, "TooManyDimensions"
    message_template = ("The data cube contains multiple temporal dimensions. The parameter `dimension` must be "
                        "specified.")


class DistinctDimensionLabelsRequiredException(OpenEOApiException):
    status_code, code = 400, "DistinctDimensionLabelsRequired"
    message_template = "The dimension labels have duplicate values. Distinct labels must be specified."


class LabelsNotEnumeratedException(OpenEOApiException):
    status_code, code = 400, "LabelsNotEnumerated"
    message_template = "The dimension labels are not enumerated."


class LabelMismatchException(OpenEOApiException):
    status_code, code = 400, "LabelMismatch"
    message_template = "The number of labels in the parameters `source` and `target` don't match."


class LabelNotAvailableException(OpenEOApiException):
    status_code, code = 400, "LabelNotAvailable"
    message_template = "A label with the specified name does not exist: '{label}'."


class LabelExistsException(OpenEOApiException):
    status_code, code = 400, "LabelExists"
    message_template = "A label with the specified name exists: '{label}'."


class BandFilterParameterMissingException(OpenEOApiException):
    status_code, code = 400, "BandFilterParameterMissing"
    message_template = ("The process `filter_bands` requires any of the parameters `bands`, `common_names` or "
                        "`wavelengths` to be set.")


class OverlapResolverMissingException(OpenEOApiException):
    status_code, code = 400, "OverlapResolverMissing"
    message_template = "Overlapping data cubes, but no overlap resolver has been specified."


class IncompatibleDataCubesException(OpenEOApiException):
    status_code, code = 400, "IncompatibleDataCubes"
    message_template = ("The data cube and the mask are incompatible, e.g. because of different dimensions or "
                        "labels: {reason}")

# --- where an error happened -------------------------------------------------------------------
# The evaluator records the failing node on the exception itself (keeping its type), innermost
# first like the openEO log `path`: [failing node, the node whose callback contained it, ...].
_PATH_ATTR = "openeo_node_path"
_PENDING_PARAMETER_ATTR = "openeo_callback_parameter"


def record_node(exc: BaseException, node_id: str, process_id: str) -> None:
    """Append a node to the exception's path; a callback's parent gets the callback's parameter name."""
    entry: dict[str, Any] = {"node_id": node_id, "process_id": process_id}
    parameter = getattr(exc, _PENDING_PARAMETER_ATTR, None)
    if parameter is not None:
        entry["parameter"] = parameter
        setattr(exc, _PENDING_PARAMETER_ATTR, None)
    path = list(getattr(exc, _PATH_ATTR, None) or [])
    path.append(entry)
    setattr(exc, _PATH_ATTR, path)


def record_callback_parameter(exc: BaseException, parameter: str) -> None:
    """Remember which argument of the parent node the failing callback was passed as."""
    setattr(exc, _PENDING_PARAMETER_ATTR, parameter)


def node_path(exc: BaseException) -> list[dict[str, Any]] | None:
    """The openEO log `path` of the failure, innermost node first; None when no node is known."""
    return getattr(exc, _PATH_ATTR, None) or None


def has_node_path(exc: BaseException) -> bool:
    return bool(getattr(exc, _PATH_ATTR, None))


def describe_failure(exc: BaseException) -> str:
    """A readable one-line reason, naming the failing node when known (for the job log and status)."""
    if isinstance(exc, OpenEOApiException):
        reason = exc.message
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    path = node_path(exc)
    if path:
        reason = f"{reason} (node '{path[0]['node_id']}', process '{path[0]['process_id']}')"
    return " ".join(reason.split())
