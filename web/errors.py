"""One place that turns exceptions into the contract's JSON error body (or a page)."""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import DomainError, TooManyRequests
from shared.text import size_text
from web.contract.routes import ENDPOINTS

log = logging.getLogger(__name__)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON error shape of API.md."""
    return {"error": {"code": code, "message": message, "details": details}}


def _wants_json() -> bool:
    """API paths, the contract's other paths (health checks), and callers that ask for JSON."""
    return (
        request.path.startswith("/api/")
        or request.path in _contract_paths()
        or request.accept_mimetypes.best == "application/json"
    )


@cache
def _contract_paths() -> frozenset[str]:
    return frozenset(e.path for e in ENDPOINTS if "<" not in e.path)


def _respond(status: int, code: str, message: str, details: Any = None) -> Any:
    if _wants_json():
        return jsonify(error_body(code, message, details)), status
    return render_template("error.html", status=status, code=code, message=message), status


def _too_large_reason() -> tuple[str, str]:
    """Why werkzeug refused the body: the request is too large, or it has too many form parts.

    Werkzeug raises the same bare RequestEntityTooLarge for both. A body within the length limit
    can only have been refused by the form parser for its part count, as its memory limit for a
    text field is set to the length limit (MAX_FORM_MEMORY_SIZE in create_app).
    """
    length, limit = request.content_length, current_app.config["SETTINGS"].max_upload_bytes
    if length is not None and length <= (request.max_content_length or length):
        return "too_many_form_parts", (
            f"The form has more than {request.max_form_parts:,} parts (fields and files). Send the file "
            'as the one part named "file", with at most a "sheet" field beside it.'
        )
    if length is None:  # a chunked body that ran past the limit
        return "file_too_large", f"The upload is larger than the limit of {size_text(limit)} for a file."
    return "file_too_large", (
        f"The upload is {size_text(length, limit)}; a file may be at most {size_text(limit)}. "
        "Split it into smaller files."
    )


def _unavailable(service: str, exc: Exception) -> Any:
    """503 while a service we depend on is down: the request may simply be sent again."""
    log.warning("%s unavailable path=%s error=%s", service, request.path, type(exc).__name__)
    name = {"database": "The database", "redis": "Redis"}[service]
    response = make_response(
        _respond(503, f"{service}_unavailable", f"{name} does not answer right now; try again shortly.")
    )
    response.headers["Retry-After"] = "30"
    return response


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        response = make_response(_respond(exc.status, exc.code, exc.message, exc.details))
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return _respond(400, "csrf_failed", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Any:
        return _respond(413, *_too_large_reason())

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        """Every other HTTP error, with the headers werkzeug gives it (405 carries Allow)."""
        code = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        response = make_response(_respond(exc.code or 500, code, exc.description or exc.name))
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_down(exc: Exception) -> Any:
        return _unavailable("database", exc)

    @app.errorhandler(RedisError)
    def _redis_down(exc: RedisError) -> Any:
        return _unavailable("redis", exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error path=%s", request.path)
        return _respond(500, "internal_error", "Something went wrong on our side; it has been logged.")
