"""Clients of the outside services the web talks to: Redis and the Celery broker."""

from __future__ import annotations

from celery import Celery
from flask import Flask, current_app
from redis import Redis

from shared.settings import Settings
from worker import create_celery


def init_app(app: Flask) -> None:
    """Create the Redis client and the task-sending Celery app (neither connects yet)."""
    settings: Settings = app.config["SETTINGS"]
    app.extensions["redis"] = Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True
    )
    app.extensions["celery"] = create_celery(settings)


def redis() -> Redis:
    """The app's Redis client."""
    return current_app.extensions["redis"]


def celery() -> Celery:
    """The Celery app used to enqueue tasks by name and ping workers."""
    return current_app.extensions["celery"]


def settings() -> Settings:
    """The app's settings."""
    return current_app.config["SETTINGS"]
