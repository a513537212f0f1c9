"""The workers' log lines, request ids across tasks, and each worker host's /metrics.

- Logging: Celery leaves the root logger to us (setup_logging), so the worker, its pool and beat
  write LOG_FORMAT lines with the bound fields (shared/log_context.py).
- Request ids: every task sent while a request id is bound carries it in its message headers
  (`request_id`); the task's lines carry it while it runs. A slot then binds the id of the unit
  it claimed (work_items.request_id), since a slot may claim any tenant's work.
- Metrics: the pool processes count into PROMETHEUS_MULTIPROC_DIR; the Celery main process
  serves their sum at WORKER_METRICS_PORT, to a bearer of METRICS_TOKEN only. A pool process that
  ends (recycled, killed) leaves its counters in its file, so they survive it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)
from prometheus_client.exposition import ThreadingWSGIServer

from shared import log_context, metrics
from shared.imports.backlog import BacklogCollector
from shared.settings import Settings
from worker import runtime

log = logging.getLogger(__name__)
HEADER = "request_id"  # the Celery message header that carries the request id
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_server: WSGIServer | None = None


@setup_logging.connect
def _logging(loglevel: int | str | None = None, **_kwargs: Any) -> None:
    log_context.configure(runtime.settings().log_format, loglevel or logging.INFO)


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    current = log_context.request_id()
    if headers is not None and current and HEADER not in headers:
        headers[HEADER] = current


@task_prerun.connect
def _bind_task(task: Any = None, **_kwargs: Any) -> None:
    offered = getattr(task.request, HEADER, None) if task is not None else None
    # The header came through the broker: checked like a client's before it reaches a log line.
    log_context.bind(request_id=log_context.request_id_from(offered) if offered else None)


@task_postrun.connect
def _unbind_task(**_kwargs: Any) -> None:
    log_context.clear()


def metrics_app(
    settings: Settings, collectors: Iterable[Any]
) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    """The WSGI app of a worker host's /metrics: the Prometheus text to a bearer of METRICS_TOKEN."""
    extra = list(collectors)

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _error(start_response, "404 Not Found", "not_found", "Only /metrics is served here.")
        if not metrics.token_matches(environ.get("HTTP_AUTHORIZATION"), settings.metrics_token):
            return _error(
                start_response,
                "401 Unauthorized",
                "unauthorized",
                "Send Authorization: Bearer <METRICS_TOKEN>.",
            )
        body = metrics.exposition(extra)
        start_response("200 OK", [("Content-Type", TEXT_FORMAT), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


def start_metrics_server(settings: Settings) -> WSGIServer | None:
    """Serve /metrics on WORKER_METRICS_PORT in a thread of this process; None when it cannot."""
    try:
        server = make_server(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            metrics_app(settings, [BacklogCollector(runtime.sessions())]),
            server_class=ThreadingWSGIServer,
            handler_class=_Quiet,
        )
    except OSError as exc:  # the port is taken (another worker on this host): work goes on without it
        log.warning("worker metrics not served port=%d error=%s", settings.worker_metrics_port, exc.strerror)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("worker metrics at http://%s:%d/metrics", settings.worker_metrics_host, server.server_port)
    return server


@worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    global _server
    settings = runtime.settings()
    if not (settings.metrics_enabled and settings.worker_metrics_port):
        return
    if metrics.multiprocess_dir() is None:
        log.warning("PROMETHEUS_MULTIPROC_DIR is unset: /metrics shows this process only, not its pool's")
    metrics.clear_multiprocess_dir()  # before the pool starts: this run counts from zero
    _server = start_metrics_server(settings)


@worker_process_shutdown.connect
def _process_ended(**_kwargs: Any) -> None:
    metrics.mark_process_dead(os.getpid())


@worker_shutdown.connect
def _stop_metrics(**_kwargs: Any) -> None:
    if _server is not None:
        _server.shutdown()
