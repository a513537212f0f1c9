"""Flower, started the way `make run` starts it, refuses requests without credentials (/metrics too)."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from scripts.run import child_env, processes
from shared.settings import PROJECT_ROOT


def _status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_flower_asks_for_its_login(base_settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = base_settings.with_(flower_basic_auth="ops:flower-secret", flower_port=port)
    proc = subprocess.Popen(
        processes(settings)["flower"],
        cwd=PROJECT_ROOT,
        env=child_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                first = _status(url)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("Flower did not start")
                time.sleep(0.2)
        assert first == 401
        assert _status(url, "ops:wrong") == 401
        assert _status(url, "ops:flower-secret") == 200
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert _status(metrics) == 401
        assert _status(metrics, "ops:wrong") == 401
        assert _status(metrics, "ops:flower-secret") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
