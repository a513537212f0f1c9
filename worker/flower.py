"""Flower with its /metrics behind the same basic auth as every other page.

Flower 2 serves /metrics without authentication (it exposes task names and worker
details); this launcher marks that handler as authenticated, then runs
`celery -A worker flower` with the given arguments: `python -m worker.flower --port=5555`.
"""

from __future__ import annotations

import sys

import tornado.web
from celery.bin.celery import main as celery_main
from flower.views.monitor import Metrics


def protect_metrics() -> None:
    """Require Flower's login (basic auth) for /metrics, as for its pages."""
    if not getattr(Metrics.get, "_login_required", False):
        guarded = tornado.web.authenticated(Metrics.get)
        guarded._login_required = True  # type: ignore[attr-defined]
        Metrics.get = guarded  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """Run Flower for the worker app with /metrics protected."""
    protect_metrics()
    sys.argv = ["celery", "-A", "worker", "flower", *(sys.argv[1:] if argv is None else argv)]
    celery_main()


if __name__ == "__main__":
    main()
