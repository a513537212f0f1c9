"""gunicorn's configuration: `gunicorn -c python:web.gunicorn_config web.asgi:create_asgi()`.

Each web process is one uvicorn event loop (web/asgi.py) in front of the Flask app, which runs in
WEB_THREADS threads: an open progress page (Server-Sent Events) or a slow client costs a coroutine,
not a thread. gunicorn reads the number of processes from WEB_CONCURRENCY itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    """uvicorn's gunicorn worker; X-Forwarded-For is the app's to judge (TRUSTED_PROXIES), not uvicorn's."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto", "proxy_headers": False}


worker_class = "web.gunicorn_config.Worker"
# Open event streams end only with their import: a stop waits this long for them, then closes them
# (each browser's EventSource reconnects to another process by itself).
graceful_timeout = 10
