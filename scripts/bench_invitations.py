"""Benchmark scenario `invitations` (issue 20): credentials by invitation against temporary passwords.

A real SMTP server (aiosmtpd, in this process, on a free 127.0.0.1 port) takes every mail and notes when
it did; the service (bench.stack: web, a Celery worker with beat, a Redis of its own) sends to it through
SMTP_URL. Taken turn about BENCH_INVITATIONS_RUNS times (default 3), so the machine's drift falls on both:

  reference    a 500-row import with temporary passwords (argon2id at the settings' cost), seconds from
               POST /api/v1/imports to `succeeded`
  invitations  a 500-row import with `"credentials": "invitation"`, seconds from POST /api/v1/imports to
               the SMTP server having accepted all 500 mails (and, beside it, to `succeeded`)
  mails/s      500 over the seconds from the first of those mails accepted to the last

Prints each run's figures, the ratio best against best, on SQLite and then on PostgreSQL at
BENCH_POSTGRES_URL where one answers (that database is dropped and created again).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller

from scripts.bench import POSTGRES_URL, Api, _free_port, _postgres_answers, stack, users_csv

RUNS = int(os.environ.get("BENCH_INVITATIONS_RUNS", "3"))
ROWS = 500
INVITATION = {"credentials": "invitation"}


class Inbox:
    """An aiosmtpd handler: accepts every mail and records, for each recipient, when it was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[float]] = {}
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()  # the clock the script times the POST with: one process
        with self.changed:
            for to in envelope.rcpt_tos:
                self.accepted.setdefault(to.lower(), []).append(now)
            self.changed.notify_all()
        return "250 OK"

    def wait_all(self, addresses: set[str], timeout: float = 600) -> list[float]:
        """When each address's first mail was accepted, once every one has been; sorted."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not addresses <= self.accepted.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = len(addresses - self.accepted.keys())
                    raise RuntimeError(f"{missing} of {len(addresses)} mails not accepted within {timeout} s")
                self.changed.wait(left)
            return sorted(self.accepted[a][0] for a in addresses)

    def extra(self, addresses: set[str]) -> int:
        """Mails beyond the first to these addresses (none is expected: a user gets one mail)."""
        with self.changed:
            return sum(len(self.accepted.get(a, [])) - 1 for a in addresses if a in self.accepted)


def _temporary(api: Api, tag: str) -> float:
    """POST /imports to `succeeded` for 500 rows with temporary passwords (the upload is not timed)."""
    upload = api.upload(users_csv(ROWS, tag))
    start = time.perf_counter()
    final = api.wait(api.begin(upload))
    took = time.perf_counter() - start
    assert final["created"] == ROWS, final
    return took


def _invited(api: Api, inbox: Inbox, tag: str) -> tuple[float, float, float, int]:
    """POST /imports to all 500 mails accepted, POST to `succeeded`, mails per second, and extra mails."""
    addresses = {f"{tag}{i}@example.com" for i in range(ROWS)}  # as users_csv writes them
    upload = api.upload(users_csv(ROWS, tag))
    start = time.perf_counter()
    final = api.wait(api.begin(upload, INVITATION))
    succeeded = time.perf_counter() - start
    assert final["created"] == ROWS, final
    times = inbox.wait_all(addresses)
    return times[-1] - start, succeeded, ROWS / (times[-1] - times[0]), inbox.extra(addresses)


def _measure(database: str, workers: int, database_url: str | None = None) -> str:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    try:
        with stack(workers, database_url, extra={"SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"}) as service:
            api = service.api()
            temporary: list[float] = []
            invited: list[tuple[float, float, float, int]] = []
            for run in range(RUNS):
                temporary.append(_temporary(api, f"invtmp{run}u"))
                invited.append(_invited(api, inbox, f"invmail{run}u"))
    finally:
        smtp.stop()
    mailed = [i[0] for i in invited]
    best_tmp, best_inv = min(temporary), min(mailed)
    return (
        f"invitations {database}, {ROWS} rows, {RUNS} runs turn about: temporary passwords POST -> succeeded "
        f"{', '.join(f'{t:.2f}' for t in temporary)} s (best {best_tmp:.2f}); invitations POST -> all "
        f"{ROWS} mails accepted {', '.join(f'{t:.2f}' for t in mailed)} s (best {best_inv:.2f}; POST -> "
        f"succeeded {', '.join(f'{i[1]:.2f}' for i in invited)} s); ratio {best_inv / best_tmp:.3f}; "
        f"mails/s first to last accepted {', '.join(f'{i[2]:.0f}' for i in invited)} "
        f"(best {max(i[2] for i in invited):.0f}); extra mails {sum(i[3] for i in invited)}"
    )


def bench_invitations(workers: int) -> str:
    lines = [_measure("SQLite", workers)]
    if _postgres_answers():
        lines.append(_measure("PostgreSQL", workers, POSTGRES_URL))
    else:
        lines.append(f"invitations PostgreSQL skipped: nothing answers at BENCH_POSTGRES_URL={POSTGRES_URL}")
    return "\n".join(lines)
