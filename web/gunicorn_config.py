"""gunicorn's configuration: `gunicorn -c python:web.gunicorn_config web.asgi:create_asgi()`.

Each web process is one uvicorn event loop (web/asgi.py) in front of the Flask app, which runs in
WEB_THREADS threads: an open progress page (Server-Sent Events) or a slow client costs a coroutine,
not a thread. gunicorn reads the number of processes from WEB_CONCURRENCY itself.

With PROMETHEUS_MULTIPROC_DIR set, each web process counts into its own file there and /metrics adds
them up: the master empties the directory at start, and a process that exits stops counting its
open streams (its counters stay). gunicorn's own log lines take LOG_FORMAT's format as the app's do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gunicorn.glogging import Logger
from uvicorn_worker import UvicornWorker

from shared import log_context, metrics
from shared.settings import Settings


class Worker(UvicornWorker):
    """uvicorn's gunicorn worker; X-Forwarded-For is the app's to judge (TRUSTED_PROXIES), not uvicorn's."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto", "proxy_headers": False}


worker_class = "web.gunicorn_config.Worker"
# Open event streams end only with their import: a stop waits this long for them, then closes them
# (each browser's EventSource reconnects to another process by itself).
graceful_timeout = 10


def on_starting(_server: Any) -> None:
    """Before the first web process forks: this run's metrics start from zero."""
    metrics.clear_multiprocess_dir()


class Logs(Logger):
    """gunicorn's own lines (its start, a process's restart, the access log) in LOG_FORMAT: with json,
    one object per line as the app writes them; with text, gunicorn's format as before."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # also on a HUP, which sets the handlers up again
        as_json = Settings.one_from_env("log_format") == "json"
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if as_json:
                    handler.setFormatter(log_context.formatter("json"))
                # Also in text: the filter cuts invitation tokens out of the access log's paths.
                handler.addFilter(log_context.ContextFilter())


logger_class = Logs


def child_exit(_server: Any, worker: Any) -> None:
    """A web process ended (restarted, killed): its live gauges go; its counters stay."""
    metrics.mark_process_dead(worker.pid)
