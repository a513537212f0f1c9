"""`make bench BENCH_ARGS='--only metrics'`: what metrics cost, measured against the same service
without them, in one run.

Each turn starts the service as `make run` starts it (SQLite, a Redis of its own, a fresh database)
twice, one after the other: once with metrics (METRICS_ENABLED=true, the processes counting into
PROMETHEUS_MULTIPROC_DIR, both /metrics endpoints scraped every BENCH_METRICS_SCRAPE_SECONDS, 15 as
in deploy/prometheus.yml) and once without (METRICS_ENABLED=false); on then off, then off then on,
so the machine's drift falls on both alike. Each service measures:

  import  one 500-row file, upload to succeeded, seconds
  status  GET /api/v1/imports/<id> under 16 clients (wrk), requests per second

Prints every turn, best against best and the median of the turns' ratios (goal: within 2 %).
BENCH_METRICS_RUNS (default 6) sets the turns.
"""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
import urllib.request
from typing import Any

from scripts.bench import Stack, _wrk, stack, users_csv

RUNS = int(os.environ.get("BENCH_METRICS_RUNS", "6"))
SCRAPE_SECONDS = float(os.environ.get("BENCH_METRICS_SCRAPE_SECONDS", "15"))
ROWS = 500


class Scraper:
    """Scrapes the web's and the worker's /metrics every SCRAPE_SECONDS, as Prometheus would."""

    def __init__(self, service: Stack) -> None:
        settings = service.settings
        self.urls = [
            f"http://127.0.0.1:{settings.port}/metrics",
            f"http://127.0.0.1:{settings.worker_metrics_port}/metrics",
        ]
        self.token = settings.metrics_token
        self.scrapes = 0
        self.seconds = 0.0  # spent waiting for the answers: what one scrape costs the service
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(SCRAPE_SECONDS):
            for url in self.urls:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
                self.seconds += time.perf_counter() - started
                self.scrapes += 1

    def stop(self) -> str:
        self.stopped.set()
        self.thread.join()
        mean = self.seconds / self.scrapes * 1000 if self.scrapes else 0.0
        return (
            f"{self.scrapes} scrapes of /metrics during the runs (every {SCRAPE_SECONDS:g} s),"
            f" {mean:.1f} ms each"
        )


def _status_rps(service: Stack, job: str) -> float:
    auth = f"Authorization: {service.api().headers['Authorization']}"
    return _wrk(f"http://127.0.0.1:{service.port}/api/v1/imports/{job}", ["-H", auth])


def _import_seconds(service: Stack, tag: str) -> float:
    api = service.api()
    start = time.perf_counter()
    final = api.wait(api.start(users_csv(ROWS, tag)))
    assert final["created"] == ROWS, final
    return time.perf_counter() - start


def _turn(workers: int, metrics: bool, tag: str) -> tuple[float, float | None, str]:
    """A fresh service (empty database, cold processes): one 500-row import, then status reads."""
    with stack(workers, extra={"METRICS_ENABLED": "true" if metrics else "false"}) as service:
        scraper = Scraper(service) if metrics else None
        try:
            api = service.api()
            job = api.start(users_csv(20, f"{tag}s"))
            api.wait(job)  # a warm service and an ended import to read
            seconds = _import_seconds(service, f"{tag}u")
            rps = _status_rps(service, job) if shutil.which("wrk") else None
        finally:
            scrapes = scraper.stop() if scraper else ""
    return seconds, rps, scrapes


def bench_metrics(workers: int) -> str:
    """Status reads and a 500-row import with metrics on and off: each turn a fresh service with
    metrics, then one without (then without, then with), so neither a service's own luck nor the
    machine's drift falls on one side only."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    rps: dict[bool, list[float]] = {True: [], False: []}
    scrapes: list[str] = []
    for run in range(RUNS):
        for metrics in (True, False) if run % 2 == 0 else (False, True):
            took, read, scraped = _turn(workers, metrics, f"metrics{int(metrics)}{run}")
            seconds[metrics].append(took)
            if read is not None:
                rps[metrics].append(read)
            if scraped:
                scrapes.append(scraped)

    def compared(figures: dict[bool, list[float]], best: Any, unit: str, fmt: str) -> str:
        on, off = figures[True], figures[False]
        pairs = statistics.median(a / b for a, b in zip(on, off, strict=True))
        listed = {
            side: ", ".join(format(v, fmt) for v in values) for side, values in (("on", on), ("off", off))
        }
        return (
            f"on {listed['on']}; off {listed['off']} {unit};"
            f" best against best {best(on) / best(off):.3f}, median of the turns' ratios {pairs:.3f}"
            " (goal within 2 %)"
        )

    lines = [f"metrics  import   one {ROWS}-row file, {compared(seconds, min, 's', '.2f')}"]
    if rps[True]:
        lines.append(
            f"metrics  status   GET /api/v1/imports/<id>, 16 clients, {compared(rps, max, 'req/s', '.0f')}"
        )
    else:
        lines.append("metrics  status   skipped: wrk is not installed")
    lines.append(f"metrics  scrapes  {scrapes[-1] if scrapes else 'none'} (the last turn with metrics)")
    return "\n".join(lines)
