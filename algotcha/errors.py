"""The AlgotchaError tree: every error a user or operator can see, with its HTTP status.

AlgotchaError
├── ConfigError            bad or missing configuration (exit 2 at start-up)
├── ValidationError        422: a field is missing, of the wrong type, or out of range
├── MalformedJSONError     400: the body is not JSON at all
├── UnauthorizedError      401: missing, expired or badly signed token
├── NotFoundError          404: no such thing, or it belongs to someone else
├── ConflictError          409: the state forbids it (email taken, job already finished)
│   └── EmailTakenError
├── PayloadTooLargeError   413
├── QueueLimitError        429: too many queued jobs for one user
├── LoginLimitError        429: too many failed logins for one account or client address
├── MarketDataError        502: the market data archive refused or failed a download
└── UnavailableError       503: PostgreSQL or RabbitMQ cannot be reached, or the API is busy
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class AlgotchaError(Exception):
    status: int = 500
    title: str = "Internal Server Error"
    type: str = "about:blank"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class ConfigError(AlgotchaError):
    """The environment does not describe a runnable service."""


class ValidationError(AlgotchaError):
    status, title = 422, "Unprocessable Content"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationError:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])


class MalformedJSONError(AlgotchaError):
    status, title = 400, "Bad Request"


class UnauthorizedError(AlgotchaError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="algotcha"'})


class NotFoundError(AlgotchaError):
    status, title = 404, "Not Found"


class ConflictError(AlgotchaError):
    status, title = 409, "Conflict"


class EmailTakenError(ConflictError):
    pass


class PayloadTooLargeError(AlgotchaError):
    status, title = 413, "Content Too Large"


class QueueLimitError(AlgotchaError):
    """The user already has the maximum number of queued jobs."""

    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class LoginLimitError(AlgotchaError):
    """Too many failed logins for the account or from the client address, recently."""

    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class MarketDataError(AlgotchaError):
    """A download from the market data archive failed; nothing of it was stored."""

    status, title = 502, "Bad Gateway"


class UnavailableError(AlgotchaError):
    """PostgreSQL or the broker cannot be reached; nothing was half-written."""

    status, title = 503, "Service Unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})
