"""Request ids, the web's log lines, and its Prometheus metrics (API.md "Metrics and request ids").

Every answer carries X-Request-ID: the client's when it is a short token, else a new one. The id
is bound to the request's log lines and goes with the tasks it sends and the work it adds
(shared/log_context.py). /metrics answers the metrics of every web process of this host (gunicorn
counts into PROMETHEUS_MULTIPROC_DIR, web/gunicorn_config.py) to a bearer of METRICS_TOKEN.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request

from shared import log_context, metrics
from shared.errors import NotFound
from shared.imports.backlog import BacklogCollector
from shared.settings import Settings
from web.clients import settings
from web.contract.routes import Caller, route
from web.database import sessions
from web.security import Unauthorized

bp = Blueprint("metrics", __name__)
HEADER = "X-Request-ID"
# Any other method (werkzeug accepts any token) is counted as "other": labels stay bounded.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def init_app(app: Flask) -> None:
    """Request ids and log lines for every request; with METRICS_ENABLED, time them and serve /metrics."""
    config: Settings = app.config["SETTINGS"]
    log_context.configure(config.log_format)
    app.before_request(_begin)
    if config.metrics_enabled:
        metrics.EVENT_STREAM_CAPACITY.set(stream_capacity(config))
        # The HTTP series exist from start-up too: at zero for the route Prometheus scrapes.
        metrics.HTTP_REQUESTS.labels("GET", "/metrics", "200")
        metrics.HTTP_SECONDS.labels("GET", "/metrics")
        app.after_request(_count)
    app.after_request(_answer_id)
    app.teardown_request(_end)
    app.register_blueprint(bp)


def stream_capacity(config: Settings) -> int:
    """The event streams this process can hold: a socket each, within its open-files limit, less what
    its database pool, Redis and files need."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(soft - 2 * config.web_threads - 64, 0)


def _begin() -> None:
    g.request_started = time.perf_counter()
    g.request_id = log_context.request_id_from(request.headers.get(HEADER))
    log_context.bind(request_id=g.request_id)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _count(response: Response) -> Response:
    method = request.method if request.method in METHODS else "other"
    route_ = _route()
    metrics.HTTP_REQUESTS.labels(method, route_, str(response.status_code)).inc()
    started = g.get("request_started")
    if started is not None:
        metrics.HTTP_SECONDS.labels(method, route_).observe(time.perf_counter() - started)
    return response


def _answer_id(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id") or log_context.request_id_from(None)
    return response


def _end(_exc: BaseException | None) -> None:
    log_context.clear()  # gthread reuses the thread for the next request


@route(
    bp,
    "GET",
    "/metrics",
    media=TEXT_FORMAT,
    caller=Caller.TOKEN,
    errors=(404,),
    description="The Prometheus text format; needs `Authorization: Bearer <METRICS_TOKEN>`. 404 when "
    "METRICS_ENABLED is false.",
)
def show_metrics() -> Any:
    """The web's metrics for Prometheus."""
    config = settings()
    if not config.metrics_enabled:
        raise NotFound("The metrics endpoint")
    if not metrics.token_matches(request.headers.get("Authorization"), config.metrics_token):
        raise Unauthorized("unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>.")
    body = metrics.exposition([BacklogCollector(sessions())])
    return Response(body, mimetype=None, content_type=TEXT_FORMAT, headers={"Cache-Control": "no-store"})
