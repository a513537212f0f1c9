"""Liveness and readiness for operators and load balancers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from web.clients import celery, redis
from web.contract.routes import Caller, route
from web.contract.schemas.common import Health, Readiness
from web.database import db

bp = Blueprint("health", __name__)


@route(bp, "GET", "/healthz", answer=Health, caller=Caller.ANYONE)
def healthz() -> Any:
    """The web process is up."""
    return jsonify({"status": "ok"})


@route(bp, "GET", "/readyz", answer=Readiness, caller=Caller.ANYONE, errors={503: Readiness})
def readyz() -> Any:
    """Database, Redis and at least one worker answer; otherwise name what is missing."""
    checks: dict[str, Any] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    workers: list[str] = []
    if checks["redis"] == "ok":
        try:
            replies = celery().control.ping(timeout=1.0) or []
            workers = sorted(name for reply in replies for name in reply)
        except Exception as exc:
            checks["workers"] = f"error: {type(exc).__name__}"
    checks.setdefault("workers", "ok" if workers else "none answered")
    missing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, Any] = {
        "status": "ready" if not missing else "not_ready",
        "checks": checks,
        "workers": workers,
    }
    if missing:
        body["missing"] = missing
        body["error"] = {
            "code": "not_ready",
            "message": "Not ready: " + ", ".join(f"{m} ({checks[m]})" for m in missing),
            "details": checks,
        }
        return jsonify(body), 503
    return jsonify(body)
