"""`make bench --only streams`: thousands of open event streams on the default `make run` (issue 22).

Ten tenants with ten admins each open 20 streams apiece (2,000, within the default limits) on
imports that stay queued. Meanwhile: `/healthz` and a status read (fresh connections, p95), an
upload's time, and the web's resident memory per open stream. Then 200 clients that send their
headers a byte a second, and `/healthz` meanwhile. Last, a 500-row import's ratio to the hashing
floor while the streams stay open (its own tenant's 200 watching it), against the same import with
no stream open, each with its floor measured beside it: BENCH_STREAMS_RUNS (3) turns about, the
streams opened and closed for each, best against best.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import urllib.request
from dataclasses import dataclass

import psutil
from redis import Redis
from sqlalchemy import delete, select

from scripts.bench import Stack, hashing_seconds, users_csv
from scripts.run import open_files_to_hard_limit
from scripts.stream_client import Stream, open_many, run
from shared.accounts.tokens import issue_token
from shared.db import make_engine, make_sessionmaker
from shared.dialer.tenants import create_admin, create_tenant
from shared.files.uploads import store_upload
from shared.imports.jobs import create_job
from shared.models import Role, Tenant, User, WorkItem

TENANTS, ADMINS, PER_ADMIN = 10, 10, 20
SLOW_CLIENTS = 200
RUNS = int(os.environ.get("BENCH_STREAMS_RUNS", "3"))


def bench_streams(service: Stack, workers: int) -> str:
    open_files_to_hard_limit()  # 2,000 client sockets here (the web got its own limit from the run)
    held, tokens = _tenants(service)
    return run(_scenario(service, workers, held, tokens))


def _tenants(service: Stack) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Ten tenants with ten admins (and their tokens) each, and one held import per tenant."""
    settings = service.settings
    cheap = settings.with_(argon2_memory_kib=1024, argon2_time_cost=1)  # nobody logs in with these
    engine = make_engine(settings)
    held: dict[str, str] = {}
    tokens: dict[str, list[str]] = {}
    with make_sessionmaker(engine).begin() as session:
        for n in range(TENANTS):
            slug = f"watch{n}"
            tenant = create_tenant(session, slug)
            session.flush()
            admins = [
                create_admin(session, cheap, tenant, f"admin{i}", f"admin{i}@{slug}.example", "Bench-Pass-1")
                for i in range(ADMINS)
            ]
            session.flush()
            tokens[slug] = [issue_token(session, settings, admin)[0] for admin in admins]
            role = session.scalars(select(Role).where(Role.tenant_id == tenant.id)).first()
            upload, _ = store_upload(
                session, settings, tenant.id, admins[0].id, "held.csv", users_csv(5, "held")
            )
            mapping = {"username": {"column": "Username"}, "email": {"column": "Email"},
                       "extension": {"generate": True}, "role": {"value": role.id}}  # fmt: skip
            job = create_job(session, tenant.id, admins[0].id, upload.id, mapping, False)
            session.flush()
            session.execute(delete(WorkItem).where(WorkItem.job_id == job.id))  # no worker will take it
            held[slug] = job.id
    engine.dispose()
    return held, tokens


def _web_rss(service: Stack) -> int:
    master = psutil.Process(service.procs["web"].pid)
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


def _cpu_seconds(service: Stack) -> tuple[float, float, float]:
    def tree(pid: int) -> float:
        master = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [master, *master.children(recursive=True)])

    return tree(service.procs["web"].pid), tree(service.procs["worker"].pid), time.process_time()


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def _fresh_get(url: str, token: str | None = None) -> float:
    """One request on a new connection; its seconds (an answer that is not 200 fails the bench)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
        assert answer.status == 200, answer.status
    return time.perf_counter() - start


async def _samples(url: str, count: int, token: str | None = None) -> list[float]:
    return [await asyncio.to_thread(_fresh_get, url, token) for _ in range(count)]


async def _slow_client(port: int, stop: asyncio.Event) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 60:
        if stop.is_set():
            break
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)
    writer.close()


@dataclass(frozen=True)
class Turn:
    """One 500-row import: its seconds, its hashing floor's, and the CPU seconds it cost the web, the
    worker and this client."""

    seconds: float
    floor: float
    cpu: tuple[float, ...]


async def _import_turn(service: Stack, workers: int, tag: str, watchers: list[str]) -> Turn:
    """A 500-row import of the demo tenant (watched by these tokens' streams) and its hashing floor."""
    api = service.api()
    cpu = _cpu_seconds(service)
    start = time.perf_counter()
    job = await asyncio.to_thread(api.start, users_csv(500, tag))
    streams = await open_many(service.port, f"/api/v1/imports/{job}/events", watchers) if watchers else []
    final = await asyncio.to_thread(api.wait, job)
    seconds = time.perf_counter() - start
    cpu = tuple(b - a for a, b in zip(cpu, _cpu_seconds(service), strict=True))
    assert final["created"] == 500, final
    for stream in streams:
        stream.close()
    floor = await asyncio.to_thread(hashing_seconds, service.settings, 500, workers)
    return Turn(seconds, floor, cpu)


async def _open_all(service: Stack, held: dict[str, str], tokens: dict[str, list[str]]) -> list[Stream]:
    streams: list[Stream] = []
    for slug, job in held.items():
        path = f"/api/v1/imports/{job}/events"
        streams += await open_many(
            service.port, path, [t for t in tokens[slug] for _ in range(PER_ADMIN)], 60
        )
    return streams


def _places_given_back(service: Stack) -> None:
    """Wait until the web has given back every stream's place (closed streams free them at once)."""
    client = Redis.from_url(service.settings.redis_url)
    deadline = time.monotonic() + 60
    while sum(client.zcard(key) for key in client.scan_iter("streams:tenant:*")):
        if time.monotonic() > deadline:
            raise RuntimeError("closed streams kept their places for 60 s")
        time.sleep(0.1)
    client.close()


async def _scenario(service: Stack, workers: int, held: dict[str, str], tokens: dict[str, list[str]]) -> str:
    base = f"http://127.0.0.1:{service.port}"
    any_token = tokens["watch0"][0]
    demo_tokens = _demo_tokens(service)
    # Turn about: an import with no stream, then one with the 2,000 open (the demo tenant's 200 on it),
    # RUNS times; the first turn's streams also give the figures of the open streams.
    alone: list[Turn] = []
    watched: list[Turn] = []
    for turn in range(RUNS):
        alone.append(await _import_turn(service, workers, f"alone{turn}", []))
        rss_before = _web_rss(service)
        start = time.perf_counter()
        everyone = await _open_all(service, held, tokens)
        if turn == 0:
            opened = time.perf_counter() - start
            refused = sum(1 for s in everyone if s.status != 200)
            rss_per_stream = (_web_rss(service) - rss_before) / len(everyone)
            health = await _samples(f"{base}/healthz", 100)
            status = await _samples(f"{base}/api/v1/imports/{held['watch0']}", 100, any_token)
            upload_seconds = await asyncio.to_thread(_timed_upload, service)
            stop = asyncio.Event()
            slow = [asyncio.ensure_future(_slow_client(service.port, stop)) for _ in range(SLOW_CLIENTS)]
            await asyncio.sleep(3)  # the slow clients are all mid-header (a byte a second) by now
            slow_health = await _samples(f"{base}/healthz", 60)
            stop.set()
            await asyncio.gather(*slow, return_exceptions=True)
        # The demo tenant's import, watched by 200 streams of its own, while the other 1,800 stay open.
        watched.append(await _import_turn(service, workers, f"watched{turn}", demo_tokens))
        for stream in everyone:
            stream.close()
        await asyncio.to_thread(_places_given_back, service)

    def best(turns: list[Turn]) -> tuple[float, float, float]:
        seconds, floor = min(t.seconds for t in turns), min(t.floor for t in turns)
        return seconds, floor, seconds / floor

    def listed(turns: list[Turn]) -> str:
        return ", ".join(f"{t.seconds:.2f}/{t.floor:.2f}" for t in turns)

    def cpu(turns: list[Turn]) -> str:
        return ", ".join("/".join(f"{c:.2f}" for c in t.cpu) for t in turns)

    w_best, w_floor, w_ratio = best(watched)
    a_best, a_floor, a_ratio = best(alone)
    return "\n".join(
        [
            f"streams  {len(everyone) - refused:,} of {len(everyone):,} streams open in {opened:.1f} s "
            f"(goal: all, within 10 s); refused {refused}",
            f"streams  meanwhile /healthz p95 {_p95(health):.1f} ms, status read p95 {_p95(status):.1f} ms "
            f"(fresh connections; goal <= 100 ms); a 500-row upload {upload_seconds * 1000:.0f} ms",
            f"streams  web resident memory per open stream {rss_per_stream / 1024:.1f} KB (goal <= 50 KB)",
            f"streams  {SLOW_CLIENTS} clients sending headers a byte a second: /healthz p95 "
            f"{_p95(slow_health):.1f} ms (goal <= 100 ms)",
            f"streams  500-row import / floor, s, turn about: with 2,000 streams open (200 on it) "
            f"{listed(watched)}; with none {listed(alone)}",
            f"streams  CPU s during each import (web/worker/this client): watched {cpu(watched)};"
            f" alone {cpu(alone)}",
            f"streams  best against best: watched {w_best:.2f} s over {w_floor:.2f} s, ratio {w_ratio:.3f}; "
            f"alone {a_best:.2f} s over {a_floor:.2f} s, ratio {a_ratio:.3f}; {w_ratio / a_ratio - 1:+.1%} "
            "(goal within 3 %)",
        ]
    )


def _timed_upload(service: Stack) -> float:
    api = service.api()
    start = time.perf_counter()
    api.call(
        "POST",
        "/api/v1/uploads",
        raw=_form(users_csv(500, "upload")),
        ctype=f"multipart/form-data; boundary={BOUNDARY}",
    )
    return time.perf_counter() - start


BOUNDARY = "bench-streams"


def _form(data: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _demo_tokens(service: Stack) -> list[str]:
    """200 streams of the demo tenant: its admin's token, ten times twenty places' worth (10 admins)."""
    settings = service.settings
    cheap = settings.with_(argon2_memory_kib=1024, argon2_time_cost=1)
    engine = make_engine(settings)
    with make_sessionmaker(engine).begin() as session:
        demo = session.scalars(select(Tenant).where(Tenant.slug == "demo")).one()
        admins = [
            create_admin(session, cheap, demo, f"watcher{i}", f"watcher{i}@demo.example", "Bench-Pass-1")
            for i in range(ADMINS - 1)
        ]
        admins.append(
            session.scalars(select(User).where(User.tenant_id == demo.id, User.username == "admin")).one()
        )
        session.flush()
        found = [issue_token(session, settings, admin)[0] for admin in admins]
    engine.dispose()
    return [token for token in found for _ in range(PER_ADMIN)]
