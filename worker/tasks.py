"""Celery tasks: thin wrappers that open a session and call one domain function."""

from __future__ import annotations

import logging

from worker.app import app

log = logging.getLogger(__name__)


@app.task(name="system.ping")
def ping() -> str:
    """A trivial task that proves a worker consumes from the broker."""
    return "pong"
