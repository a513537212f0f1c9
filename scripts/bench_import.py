"""Benchmark: seconds from upload to `succeeded` for a 500-row file with two worker processes,
beside the seconds that hashing 500 passwords alone takes over two processes.

Usage: python -m scripts.bench_import [--rows 500] [--workers 2] [--database-url URL]
Prints figures; asserts nothing. Uses the production argon2 parameters unless overridden.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.fernet import Fernet
from redis import Redis

from scripts.local_redis import redis_answers, start_redis
from shared.settings import PROJECT_ROOT, Settings


def _hash_batch(args: tuple[int, int, int, int]) -> int:
    from shared.passwords import generate_password, hash_password

    count, memory, time_cost, parallelism = args
    settings = Settings(argon2_memory_kib=memory, argon2_time_cost=time_cost, argon2_parallelism=parallelism)
    for _ in range(count):
        hash_password(settings, generate_password())
    return count


def hashing_seconds(settings: Settings, rows: int, workers: int) -> float:
    """Wall time to hash `rows` passwords spread over `workers` processes."""
    share = [rows // workers + (1 if i < rows % workers else 0) for i in range(workers)]
    params = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
    # spawn, not fork: the parent holds threads and sockets a forked child could deadlock on.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_hash_batch, [(1, *params)] * workers))  # warm the processes up
        start = time.perf_counter()
        assert sum(pool.map(_hash_batch, [(n, *params) for n in share])) == rows
        return time.perf_counter() - start


def _csv(rows: int, tag: str) -> bytes:
    lines = ["Username,Email,First Name,Last Name"]
    lines += [f"{tag}{i},{tag}{i}@example.com,First{i},Last{i}" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    redis_proc = None if redis_answers(redis_url) else start_redis(redis_url)
    Redis.from_url(redis_url).flushdb()
    settings = Settings.from_env(
        {
            "VAR_DIR": str(tmp),
            "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
            "REDIS_URL": redis_url,
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SECRET_KEY": "bench",
            "FLOWER_BASIC_AUTH": "bench:bench",
            "DEMO_ADMIN_PASSWORD": "Bench-Admin-1",
            "TASK_QUEUE": f"bench-{os.getpid()}",
            "LOGIN_RATE_LIMIT": "1000 per minute",
        }
        | {k: v for k, v in os.environ.items() if k.startswith("ARGON2_") or k == "CHUNK_SIZE"}
    )
    env = dict(os.environ) | settings.to_env()
    py = sys.executable
    subprocess.run(
        [py, "-m", "alembic", "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from shared.db import make_engine, make_sessionmaker
    from shared.tenants import seed_demo
    from web import create_app

    with make_sessionmaker(make_engine(settings)).begin() as session:
        seed_demo(session, settings)
    worker = subprocess.Popen(
        [
            py,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            f"--concurrency={args.workers}",
            "--loglevel=WARNING",
            "-n",
            f"bench-{os.getpid()}@localhost",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client = create_app(settings).test_client()
        token = client.post(
            "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": "Bench-Admin-1"}
        ).get_json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        while client.get("/readyz").status_code != 200:
            time.sleep(0.2)
        role = client.get("/api/v1/roles", headers=auth).get_json()["items"][0]["id"]
        mapping = {
            "username": {"column": "Username"},
            "email": {"column": "Email"},
            "extension": {"generate": True},
            "role": {"value": role},
            "first_name": {"column": "First Name"},
            "last_name": {"column": "Last Name"},
        }
        timings = []
        for run in range(args.runs):
            data = _csv(args.rows, f"b{os.getpid()}r{run}u")
            start = time.perf_counter()
            up = client.post(
                "/api/v1/uploads",
                headers=auth,
                content_type="multipart/form-data",
                data={"file": (io.BytesIO(data), "bench.csv")},
            ).get_json()
            job = client.post(
                "/api/v1/imports", headers=auth, json={"upload_id": up["upload_id"], "mapping": mapping}
            ).get_json()
            while (status := client.get(f"/api/v1/imports/{job['id']}", headers=auth).get_json())[
                "status"
            ] not in ("succeeded", "failed"):
                time.sleep(0.05)
            timings.append(time.perf_counter() - start)
            assert status["status"] == "succeeded" and status["created"] == args.rows, status
        hashing = hashing_seconds(settings, args.rows, args.workers)
        best = min(timings)
        db_kind = settings.database_url.split(":", 1)[0]
        print(
            f"database: {db_kind}  rows: {args.rows}  worker processes: {args.workers}  "
            f"chunk size: {settings.chunk_size}"
        )
        print(
            f"argon2id: m={settings.argon2_memory_kib} KiB t={settings.argon2_time_cost} "
            f"p={settings.argon2_parallelism}"
        )
        print("upload -> succeeded (s): " + ", ".join(f"{t:.2f}" for t in timings) + f"  (best {best:.2f})")
        print(f"hashing {args.rows} passwords over {args.workers} processes (s): {hashing:.2f}")
        print(f"ratio import / hashing: {best / hashing:.2f}")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        if redis_proc is not None:
            redis_proc.terminate()


if __name__ == "__main__":
    main()
