"""gunicorn's configuration from our settings: `gunicorn --config python:web.gunicorn_config ...`.

The thread count is WEB_THREADS (shared/settings.py), the same number the app's database pool keeps
connections for; gthread workers, since each open progress page (Server-Sent Events) holds a thread.
gunicorn reads the number of processes from WEB_CONCURRENCY itself.
"""

from __future__ import annotations

from shared.settings import Settings

worker_class = "gthread"
threads = Settings.one_from_env("web_threads")
