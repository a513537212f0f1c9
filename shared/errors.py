"""Domain exceptions; the web maps each to an HTTP status and the JSON error body."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A problem the caller can fix; carries a stable snake_case code."""

    status = 400

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class FileRejected(DomainError):
    """An uploaded file that cannot be imported (format, size, header, rows)."""

    STATUS_BY_CODE: ClassVar[dict[str, int]] = {"file_too_large": 413, "unsupported_format": 415}

    def __init__(self, code: str, message: str, row: int | None = None, **details: Any) -> None:
        details = ({"row": row} if row is not None else {}) | details
        super().__init__(code, message, details or None)
        self.row = row
        self.status = self.STATUS_BY_CODE.get(code, 400)


class NotFound(DomainError):
    """A resource that does not exist, or belongs to another tenant."""

    status = 404

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} was not found.")


class InvalidMapping(DomainError):
    """A column mapping with problems; details lists every one of them."""

    status = 422

    def __init__(self, problems: list[dict[str, str]]) -> None:
        summary = "; ".join(p["message"] for p in problems)
        super().__init__("invalid_mapping", f"The mapping has problems: {summary}", problems)
        self.problems = problems


class Unprocessable(DomainError):
    """A well-formed request whose content cannot be used; details say what, item by item."""

    status = 422


class Conflict(DomainError):
    """A request that does not fit the resource's current state."""

    status = 409


class Gone(DomainError):
    """Something that existed once and was destroyed on purpose."""

    status = 410


class Unavailable(DomainError):
    """A service we depend on (the queue) did not answer; trying again later may work."""

    status = 503


class TooManyRequests(DomainError):
    """A limit that keeps one client from exhausting what all share; `retry_after` seconds may help."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, message, {"retry_after": retry_after})
        self.retry_after = retry_after
