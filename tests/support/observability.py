"""Metrics and logs as an operator reads them: scrapes of /metrics, a worker serving its own, a
real Prometheus, and the logs the suite wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from scripts.run import free_port
from shared.settings import PROJECT_ROOT, Settings
from tests.support.workers import PausedWorker, WorkerProcess

DEPLOY = PROJECT_ROOT / "deploy"
# API.md "Metrics and request ids": every series that exists from start-up on, with its labels.
CONTRACT_SERIES: list[tuple[str, dict[str, str]]] = [
    *(("user_import_rows_total", {"outcome": o}) for o in ("created", "duplicate", "error", "cancelled")),
    *(("user_import_jobs_total", {"status": s}) for s in ("succeeded", "failed", "cancelled", "undone")),
    *(("user_import_work_units", {"state": s}) for s in ("pending", "claimed")),
    ("user_import_claim_seconds_count", {}),
    ("user_import_password_hash_seconds_count", {}),
    ("user_import_event_streams", {}),
    *(("user_import_outage_retries_total", {"service": s}) for s in ("database", "redis")),
]
HTTP_SERIES = ["http_requests_total", "http_request_duration_seconds_count"]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text answer, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def fetch(url: str, token: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET a URL, with a bearer token when given; (status, body)."""
    headers = (headers or {}) | ({"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class MetricsWorld:
    """A worker of its own serving /metrics (pool counting into a multiprocess directory, JSON logs),
    with the session's worker paused so that this one does all the work. Each pool process ends
    after one task, so every count it reads has outlived the process that made it."""

    def __init__(self, base: Settings, tmp: Path) -> None:
        self.settings = base.with_(
            task_queue=f"{base.task_queue}-metrics",
            worker_metrics_port=free_port(),
            worker_metrics_host="127.0.0.1",
            log_format="json",
        )
        self.paused = PausedWorker(base)
        self.worker = WorkerProcess(
            self.settings,
            concurrency=2,
            name="metrics",
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")},
            args=["--max-tasks-per-child=1"],
        )
        self.url = f"http://127.0.0.1:{self.settings.worker_metrics_port}/metrics"
        self._wait_serving()

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                if fetch(self.url)[0] == 401:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, self.worker.log_path.read_text()[-3000:]
            time.sleep(0.1)

    def scrape(self) -> Samples:
        status, body = fetch(self.url, self.settings.metrics_token)
        assert status == 200, body
        return parse(body)

    def close(self) -> None:
        self.worker.stop()
        self.paused.resume()


class ServedApp:
    """The web app on a real port (werkzeug, threaded), for a client outside this process."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


def promtool() -> str | None:
    return shutil.which("promtool")


class Prometheus:
    """A real Prometheus scraping the given targets with the token, on a free port and a temporary store."""

    def __init__(self, tmp: Path, token: str, targets: dict[str, str]) -> None:
        token_file = tmp / "metrics_token"
        token_file.write_text(token)
        jobs = [
            {
                "job_name": name,
                "scrape_interval": "1s",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [target]}],
            }
            for name, target in targets.items()
        ]
        config = tmp / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Prometheus answers 503 to every query until its store has loaded: wait for /-/ready."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if fetch(f"{self.url}/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.1)

    def query(self, expr: str) -> list[dict]:
        status, body = fetch(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200, body
        return json.loads(body)["data"]["result"]

    def wait_for(self, expr: str, expected: float, timeout: float = 60) -> list[dict]:
        """Poll the query until its one result is `expected`; returns the result."""
        self.wait_ready(timeout)
        deadline = time.monotonic() + timeout
        last: object = "no answer"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                result = self.query(expr)
                if len(result) == 1 and float(result[0]["value"][1]) == expected:
                    return result
                last = result
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"{expr} never became {expected}: {last}\n{self.log.read_text()[-2000:]}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def log_files(root: Path) -> Iterator[Path]:
    """Every log the suite wrote under its temporary directory."""
    yield from sorted(p for p in root.rglob("*.log") if p.is_file())
