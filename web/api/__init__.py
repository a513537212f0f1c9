"""The JSON API under /api/v1 (API.md); cookie callers are CSRF-checked in api_auth."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    """Register the API's routes."""
    from web.api import auth, import_actions, imports, mappings, reference, users  # noqa: F401  (routes on bp)
    from web.security import csrf

    csrf.exempt(bp)  # token callers carry no CSRF token; api_auth checks cookie callers
    app.register_blueprint(bp)
