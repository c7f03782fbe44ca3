"""The gateway's error hierarchy, mapped to OpenAI error bodies in one place.

Every failure a client can see is one of these classes. The HTTP edge turns any of them into
``{"error": {"message", "type", "code"}}`` with the class's status; anything else that escapes a handler
becomes a generic 500 without a traceback (see ``proxy.app``).
"""

from __future__ import annotations

import orjson

__all__ = [
    "AuthenticationError",
    "AuthenticationThrottledError",
    "BackendBusyError",
    "BackendConnectError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "CapacityExhaustedError",
    "ConcurrencyLimitError",
    "ConflictError",
    "GatewayError",
    "InternalError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "ModelNotFoundError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "error_body",
]


class GatewayError(Exception):
    """A failure with an HTTP status and an OpenAI-style error type and code."""

    status_code = 500
    error_type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries (e.g. ``Retry-After``)."""
        return {}

    def body(self) -> bytes:
        return error_body(self.message, self.error_type, self.code, self.param)


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class ConflictError(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class MethodNotAllowedError(GatewayError):
    status_code = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"allow": ", ".join(self.allowed)}


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after_seconds: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)
        self.extra_headers = headers or {}

    def headers(self) -> dict[str, str]:
        return {**self.extra_headers, "retry-after": str(self.retry_after_seconds)}


class AuthenticationThrottledError(RateLimitError):
    """Too many failed authentications from one client address: refused before any credential check."""

    code = "too_many_failed_authentications"


class ConcurrencyLimitError(RateLimitError):
    """The user already has as many requests in progress as they may, and none ended in time."""

    code = "concurrency_limit_exceeded"


class InternalError(GatewayError):
    """An unexpected failure inside the gateway; the message never carries internals."""


class BackendError(GatewayError):
    """The model backend answered with something that is not a usable response."""

    status_code = 502
    error_type = "api_error"
    code = "bad_gateway"


class BackendUnavailableError(BackendError):
    code = "backend_unavailable"


class BackendConnectError(BackendUnavailableError):
    """No connection to the backend could be opened: nothing of the request was sent, so another backend
    may be asked without the request running twice."""


class BackendBusyError(GatewayError):
    """Every backend asked answered 429: they are at capacity. The caller is not at fault and is not
    charged; ``Retry-After`` is the backend's, when it gave one."""

    status_code = 429
    error_type = "server_error"
    code = "model_overloaded"

    def __init__(self, message: str, *, retry_after: str | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"retry-after": self.retry_after} if self.retry_after else {}


class BackendTimeoutError(GatewayError):
    status_code = 504
    error_type = "api_error"
    code = "backend_timeout"


class ServiceUnavailableError(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "service_unavailable"


class CapacityExhaustedError(ServiceUnavailableError):
    """A model (all users together) has no free slot or tokens left, and none came free in time."""

    code = "capacity_exhausted"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after_seconds)}


def error_body(message: str, error_type: str, code: str, param: str | None = None) -> bytes:
    """Serialise an OpenAI-shaped error body."""
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})
