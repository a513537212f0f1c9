"""`make bench BENCH_ARGS='--only metrics'`: what metrics cost, measured against the same service
without them, in one run.

Two services run side by side as `make run` starts them (SQLite, a Redis each): one with metrics
(METRICS_ENABLED=true, the processes counting into PROMETHEUS_MULTIPROC_DIR, both /metrics endpoints
scraped every second, faster than Prometheus would), one without (METRICS_ENABLED=false). Each
figure is taken turn about, on then off, so the machine's drift falls on both alike:

  status  GET /api/v1/imports/<id> under 16 clients (wrk), requests per second, best of the runs
  import  one 500-row file, upload to succeeded, seconds, best of the runs

Prints both with their ratio (goal: within 2 %). BENCH_METRICS_RUNS (default 3) sets the runs.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from contextlib import ExitStack

from scripts.bench import Stack, _wrk, stack, users_csv

RUNS = int(os.environ.get("BENCH_METRICS_RUNS", "3"))
ROWS = 500


class Scraper:
    """Scrapes the web's and the worker's /metrics every second, as Prometheus would (more often)."""

    def __init__(self, service: Stack) -> None:
        settings = service.settings
        self.urls = [
            f"http://127.0.0.1:{settings.port}/metrics",
            f"http://127.0.0.1:{settings.worker_metrics_port}/metrics",
        ]
        self.token = settings.metrics_token
        self.scrapes = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            for url in self.urls:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
                self.scrapes += 1

    def stop(self) -> int:
        self.stopped.set()
        self.thread.join()
        return self.scrapes


def _status_rps(service: Stack, job: str) -> float:
    auth = f"Authorization: {service.api().headers['Authorization']}"
    return _wrk(f"http://127.0.0.1:{service.port}/api/v1/imports/{job}", ["-H", auth])


def _import_seconds(service: Stack, tag: str) -> float:
    api = service.api()
    start = time.perf_counter()
    final = api.wait(api.start(users_csv(ROWS, tag)))
    assert final["created"] == ROWS, final
    return time.perf_counter() - start


def bench_metrics(workers: int) -> str:
    """Status reads and a 500-row import with metrics on and off, taken turn about."""
    with ExitStack() as stacks:
        on = stacks.enter_context(stack(workers, extra={"METRICS_ENABLED": "true"}))
        off = stacks.enter_context(stack(workers, extra={"METRICS_ENABLED": "false"}))
        scraper = Scraper(on)
        try:
            jobs = {}
            for name, service in (("on", on), ("off", off)):
                api = service.api()
                jobs[name] = api.start(users_csv(20, f"metrics{name}s"))
                api.wait(jobs[name])
            rps: dict[str, list[float]] = {"on": [], "off": []}
            seconds: dict[str, list[float]] = {"on": [], "off": []}
            for run in range(RUNS):
                for name, service in (("on", on), ("off", off)):
                    seconds[name].append(_import_seconds(service, f"metrics{name}{run}u"))
                    if shutil.which("wrk"):
                        rps[name].append(_status_rps(service, jobs[name]))
        finally:
            scrapes = scraper.stop()
    imports = (
        f"import   one {ROWS}-row file, metrics on {min(seconds['on']):.2f} s,"
        f" off {min(seconds['off']):.2f} s (best of {RUNS}),"
        f" ratio {min(seconds['on']) / min(seconds['off']):.3f} (goal within 2 %)"
    )
    if not rps["on"]:
        return f"metrics  {imports}; status skipped: wrk is not installed; {scrapes} scrapes"
    status = (
        f"status   GET /api/v1/imports/<id>, 16 clients, metrics on {max(rps['on']):.0f} req/s, off"
        f" {max(rps['off']):.0f} req/s (best of {RUNS}), ratio {max(rps['on']) / max(rps['off']):.3f}"
        " (goal within 2 %)"
    )
    return f"metrics  {status}\nmetrics  {imports}\nmetrics  {scrapes} scrapes of /metrics during the runs"
