"""gunicorn's configuration from our settings: `gunicorn --config python:web.gunicorn_config ...`.

The thread count is WEB_THREADS (shared/settings.py), the same number the app's database pool keeps
connections for; gthread workers, since each open progress page (Server-Sent Events) holds a thread.
gunicorn reads the number of processes from WEB_CONCURRENCY itself.

With PROMETHEUS_MULTIPROC_DIR set, each web process counts into its own file there and /metrics adds
them up: the master empties the directory at start, and a process that exits stops counting its
open streams (its counters stay). gunicorn's own log lines take LOG_FORMAT's format as the app's do.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from shared import log_context, metrics
from shared.settings import Settings

worker_class = "gthread"
threads = Settings.one_from_env("web_threads")


def on_starting(_server: Any) -> None:
    """Before the first web process forks: this run's metrics start from zero."""
    metrics.clear_multiprocess_dir()


class Logs(Logger):
    """gunicorn's own lines (its start, a process's restart, the access log) in LOG_FORMAT: with json,
    one object per line as the app writes them; with text, gunicorn's format as before."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # also on a HUP, which sets the handlers up again
        if Settings.one_from_env("log_format") != "json":
            return
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(log_context.formatter("json"))
                handler.addFilter(log_context.ContextFilter())


logger_class = Logs


def child_exit(_server: Any, worker: Any) -> None:
    """A web process ended (restarted, killed): its live gauges go; its counters stay."""
    metrics.mark_process_dead(worker.pid)
