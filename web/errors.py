"""One place that turns exceptions into the contract's JSON error body (or a page)."""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import DomainError
from web.contract import ENDPOINTS

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


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        return _respond(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return _respond(400, "csrf_failed", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Any:
        limit = app.config["SETTINGS"].max_upload_bytes
        return _respond(413, "file_too_large", f"The file is larger than {limit // (1024 * 1024)} MB.")

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
        log.warning("database unavailable path=%s error=%s", request.path, type(exc).__name__)
        response = make_response(
            _respond(503, "database_unavailable", "The database does not answer now; try again shortly.")
        )
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(RedisError)
    def _redis_down(exc: RedisError) -> Any:
        log.warning("redis unavailable path=%s error=%s", request.path, type(exc).__name__)
        response = make_response(
            _respond(503, "redis_unavailable", "Redis does not answer right now; try again shortly.")
        )
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error path=%s", request.path)
        return _respond(500, "internal_error", "Something went wrong on our side; it has been logged.")
