"""Flask application factory: `flask --app web ...`, `gunicorn 'web:create_app()'`."""

from __future__ import annotations

from flask import Flask

from shared.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for these settings (from the environment by default)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        # Werkzeug refuses bodies past this early; the reader checks the exact file size.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 256 * 1024,
        # A text field may be as large as the body: then a body within MAX_CONTENT_LENGTH that the
        # form parser refuses has too many parts (MAX_FORM_PARTS), and the 413 can say so.
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes + 256 * 1024,
        JSON_SORT_KEYS=False,
    )

    from web import (
        api,
        cli,
        clients,
        database,
        errors,
        headers,
        health,
        multipart,
        observability,
        page_sessions,
        pages,
        security,
    )
    from web.contract import openapi, request_json, routes

    observability.init_app(app)  # first: its request id and timing cover every other hook
    request_json.init_app(app)
    headers.init_app(app)
    multipart.init_app(app)
    database.init_app(app)
    page_sessions.init_app(app)
    clients.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    routes.init_app(app)
    app.register_blueprint(health.bp)
    api.init_app(app)
    openapi.init_app(app)
    pages.init_app(app)
    cli.init_app(app)
    return app
