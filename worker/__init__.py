"""Celery worker package: `celery -A worker worker`."""

from worker.app import app, create_celery

__all__ = ["app", "create_celery"]
