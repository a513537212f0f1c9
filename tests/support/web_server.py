"""The web as production runs it: gunicorn's uvicorn workers serving web.asgi, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts.run import free_port
from shared.settings import PROJECT_ROOT, Settings
from tests.support.workers import stop_group

BIN = Path(sys.executable).parent


class WebServer:
    """`gunicorn -c python:web.gunicorn_config web.asgi:create_asgi()` on a free port, for these settings."""

    def __init__(self, settings: Settings, name: str = "web", processes: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(settings.var_dir) / f"{name}-{self.port}.log"
        env = dict(os.environ) | settings.to_env() | {"WEB_CONCURRENCY": str(processes)}
        self.proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--config",
                "python:web.gunicorn_config",
                "--bind",
                f"127.0.0.1:{self.port}",
                "web.asgi:create_asgi()",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)  # not listening yet
        raise RuntimeError(f"web did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_group(self.proc)
