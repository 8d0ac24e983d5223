"""openEO API errors: one class per code of the spec's errors.json (checked by tests/unit/test_errors.py).

Domain code raises these; the HTTP layer turns them into `{id, code, message, links}` bodies. The
processing container raises them too, so a failed node reaches the job log with its spec code.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar


class OpenEOApiException(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "Internal"
    message_template: ClassVar[str] = "Server error: {message}"

    def __init__(self, message: str | None = None, **params: Any) -> None:
        self.params = params
        self.message = message if message is not None else self.message_template.format(**params)
        self.id = uuid.uuid4().hex
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "message": self.message, "links": []}


class InternalException(OpenEOApiException):
    pass


class NotFoundException(OpenEOApiException):
    status_code, code, message_template = 404, "NotFound", "Resource not found."


class FeatureUnsupportedException(OpenEOApiException):
    status_code, code, message_template = 501, "FeatureUnsupported", "Feature not supported."


class CollectionNotFoundException(OpenEOApiException):
    status_code, code, message_template = 404, "CollectionNotFound", "Collection '{identifier}' does not exist."


class ProcessGraphMissingException(OpenEOApiException):
    status_code, code = 400, "ProcessGraphMissing"
    message_template = "Invalid process specified. It doesn't contain a process graph."


class ProcessGraphInvalidException(OpenEOApiException):
    status_code, code, message_template = 400, "ProcessGraphInvalid", "Invalid process graph specified."


class ProcessGraphComplexityException(OpenEOApiException):
    status_code, code = 400, "ProcessGraphComplexity"
    message_template = "The process is too complex for for synchronous processing. Please use a batch job instead."


class EstimateComplexityException(OpenEOApiException):
    """openEO's answer when a job's costs cannot be estimated reliably (its spec: HTTP 500)."""

    status_code, code = 500, "EstimateComplexity"
    message_template = "The process is too complex to calculate an estimate."


class ProcessUnsupportedException(OpenEOApiException):
    status_code, code = 400, "ProcessUnsupported"
    message_template = "Process with identifier '{process}' is not available in namespace '{namespace}'."


class ProcessParameterInvalidException(OpenEOApiException):
    status_code, code = 400, "ProcessParameterInvalid"
    message_template = "The value passed for parameter '{parameter}' in process '{process}' is invalid: {reason}"


class ProcessParameterRequiredException(OpenEOApiException):
    status_code, code = 400, "ProcessParameterRequired"
    message_template = "Process '{process}' parameter '{parameter}' is required."


class ProcessParameterUnsupportedException(OpenEOApiException):
    status_code, code = 400, "ProcessParameterUnsupported"
    message_template = "Process '{process}' does not support parameter '{parameter}'."


class PredefinedProcessExistsException(OpenEOApiException):
    status_code, code = 400, "PredefinedProcessExists"
    message_template = "A predefined process with the given identifier exists."


class ProcessGraphNotFoundException(OpenEOApiException):
    status_code, code = 404, "ProcessGraphNotFound"
    message_template = "User-defined process '{identifier}' does not exist."


class JobNotFoundException(OpenEOApiException):
    status_code, code, message_template = 404, "JobNotFound", "The batch job '{identifier}' does not exist."


class JobLockedException(OpenEOApiException):
    status_code, code = 400, "JobLocked"
    message_template = "Batch job is locked due to a queued or running batch computation."


class JobNotFinishedException(OpenEOApiException):
    status_code, code = 400, "JobNotFinished"
    message_template = (
        "Batch job has not finished computing the results yet. Please try again later or contact our support."
    )



class NoDataForUpdateException(OpenEOApiException):
    status_code, code, message_template = 400, "NoDataForUpdate", "No data specified to be updated."


class PaymentRequiredException(OpenEOApiException):
    status_code, code = 402, "PaymentRequired"
    message_template = "The budget required to fulfil the request is not sufficient. A payment is required first."


class BudgetInvalidException(OpenEOApiException):
    status_code, code, message_template = 400, "BudgetInvalid", "The specified budget is too low."

class AuthenticationRequiredException(OpenEOApiException):
    status_code, code, message_template = 401, "AuthenticationRequired", "Unauthorized."


class AuthenticationSchemeInvalidException(OpenEOApiException):
    status_code, code, message_template = 403, "AuthenticationSchemeInvalid", "Authentication method not supported."


class TokenInvalidException(OpenEOApiException):
    status_code, code = 403, "TokenInvalid"
    message_template = "Authorization token has expired or is invalid. Please authenticate again."


class CredentialsInvalidException(OpenEOApiException):
    status_code, code, message_template = 403, "CredentialsInvalid", "Credentials are not correct."


class PermissionsInsufficientException(OpenEOApiException):
    status_code, code = 403, "PermissionsInsufficient"
    message_template = (
        "Forbidden. The permissions of the authenticated account do not allow to request the requested resource."
    )


class FilePathInvalidException(OpenEOApiException):
    status_code, code, message_template = 400, "FilePathInvalid", "File path is invalid: {reason}"


class FileNotFoundException(OpenEOApiException):
    status_code, code, message_template = 404, "FileNotFound", "File '{file}' does not exist."


class FileSizeExceededException(OpenEOApiException):
    status_code, code, message_template = 400, "FileSizeExceeded", "File size it too large. Maximum file size: {size}"


class StorageQuotaExceededException(OpenEOApiException):
    status_code, code, message_template = 400, "StorageQuotaExceeded", "Your storage quota has been exceeded."


class FileOperationUnsupportedException(OpenEOApiException):
    status_code, code = 400, "FileOperationUnsupported"
    message_template = "The file operation is not supported for the specified path."


class FolderOperationUnsupportedException(OpenEOApiException):
    status_code, code = 400, "FolderOperationUnsupported"
    message_template = "Operation is only supported for files, not folders."


class BadRequestException(OpenEOApiException):
    """A malformed request body; openEO has no dedicated code, the reference back-ends use `BadRequest`."""

    status_code, code, message_template = 400, "BadRequest", "Bad request: {reason}"


class ServiceNotFoundException(OpenEOApiException):
    status_code, code, message_template = 404, "ServiceNotFound", "Service '{identifier}' does not exist."


class ServiceUnsupportedException(OpenEOApiException):
    status_code, code, message_template = 400, "ServiceUnsupported", "Service type '{type}' is not supported."


class ServiceConfigUnsupportedException(OpenEOApiException):
    status_code, code = 400, "ServiceConfigUnsupported"
    message_template = "Service parameter '{parameter}' is not supported."


class ServiceConfigInvalidException(OpenEOApiException):
    status_code, code = 400, "ServiceConfigInvalid"
    message_template = "The value passed for the service parameter '{parameter}' is invalid: {reason}"


ALL_ERRORS: tuple[type[OpenEOApiException], ...] = tuple(
    cls for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, OpenEOApiException) and cls is not OpenEOApiException
)


class TooManyRequestsException(OpenEOApiException):
    """Past a rate limit or during a lockout (openEO defines no code for 429). Kept out of `ALL_ERRORS`,
    the spec's codes; the HTTP layer sends `Retry-After: {retry_after_s}`."""

    status_code, code = 429, "TooManyRequests"
    message_template = "Too many requests; retry in {retry_after_s} s."

