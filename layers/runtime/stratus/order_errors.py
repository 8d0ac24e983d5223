"""Errors of the order-service API (`/api/v1/`), in the same `{id, code, message, links}` body as the
openEO API's (so one client-side error handler serves both), with codes of their own."""

from __future__ import annotations

from stratus.errors import OpenEOApiException


class OrderServiceException(OpenEOApiException):
    """Base of the order-service errors (not openEO codes: kept out of `stratus.errors.ALL_ERRORS`)."""


class InvalidRequestException(OrderServiceException):
    status_code, code, message_template = 400, "InvalidRequest", "Invalid request: {reason}"


class InvalidGrantException(OrderServiceException):
    """OAuth2 token endpoint refusals use RFC 6749's error names in `code`."""

    status_code, code, message_template = 400, "invalid_grant", "The credentials are not valid."


class InvalidClientException(OrderServiceException):
    status_code, code, message_template = 401, "invalid_client", "Unknown client or wrong secret."


class UnsupportedGrantTypeException(OrderServiceException):
    status_code, code, message_template = 400, "unsupported_grant_type", "Supported: client_credentials, password."


class AuthenticationRequiredException(OrderServiceException):
    status_code, code, message_template = 401, "AuthenticationRequired", "A bearer token is required."


class TokenInvalidException(OrderServiceException):
    status_code, code, message_template = 401, "TokenInvalid", "The bearer token has expired or is invalid."


class CustomerInactiveException(OrderServiceException):
    status_code, code, message_template = 403, "CustomerInactive", "This customer account is deactivated."


class ScopeMissingException(OrderServiceException):
    status_code, code, message_template = 403, "ScopeMissing", "Missing scope '{scope}' for this request."


class CustomerExistsException(OrderServiceException):
    status_code, code, message_template = 409, "CustomerExists", "A customer with this e-mail exists already."


class CustomerNotFoundException(OrderServiceException):
    status_code, code, message_template = 404, "CustomerNotFound", "Customer '{customer_id}' does not exist."


class ServiceNotFoundException(OrderServiceException):
    status_code, code, message_template = 404, "ServiceNotFound", "Service '{service_id}' does not exist."


class OrderNotFoundException(OrderServiceException):
    status_code, code, message_template = 404, "OrderNotFound", "Order '{order_id}' does not exist."


class IdempotencyConflictException(OrderServiceException):
    status_code, code = 409, "IdempotencyConflict"
    message_template = "This Idempotency-Key was used for a different order."


class UsageLimitExceededException(OrderServiceException):
    status_code, code = 429, "UsageLimitExceeded"
    message_template = ("Usage limit reached: {limit} order(s) of '{service_id}' per {interval_s} s; "
                        "the next one is possible after {retry_after}.")


class PasswordResetInvalidException(OrderServiceException):
    status_code, code, message_template = 400, "PasswordResetInvalid", "The reset token is invalid or has expired."


class TooManyRequestsException(OrderServiceException):
    """A rate limit or a lockout; the HTTP layer sends `Retry-After: {retry_after_s}`."""

    status_code, code = 429, "TooManyRequests"
    message_template = "Too many requests; retry in {retry_after_s} s."


class RegistrationClosedException(OrderServiceException):
    status_code, code = 403, "RegistrationClosed"
    message_template = "This deployment does not take registrations; ask its operator for an account."


class RegistrationTokenInvalidException(OrderServiceException):
    status_code, code = 400, "RegistrationTokenInvalid"
    message_template = "The verification token is invalid, used or expired; please register again."
