"""Metrics, request ids and JSON logs as an operator meets them (API.md "Metrics and request ids"):
the web's /metrics and a real worker's, the deploy/ files checked by Prometheus's own tools, and a
real Prometheus scraping both while an import runs."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import uuid

import pytest
import yaml

from tests.support.accounts import ADMIN_PASSWORD
from tests.support.actions import ImportActions
from tests.support.builders import basic_mapping, to_csv
from tests.support.observability import (
    CONTRACT_SERIES,
    DEPLOY,
    HTTP_SERIES,
    MetricsWorld,
    Prometheus,
    ServedApp,
    fetch,
    parse,
    promtool,
    value,
)
from tests.support.secrets import remember_secret
from web import create_app

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@pytest.fixture(scope="module")
def world(base_settings, tmp_path_factory):
    world = MetricsWorld(base_settings, tmp_path_factory.mktemp("metrics"))
    remember_secret(world.settings.metrics_token)
    yield world
    world.close()


@pytest.fixture
def web(clean_db, world):
    """An API client of the world's web, with an admin's token."""
    app = create_app(
        world.settings.with_(log_format="text")
    )  # the worker's lines are JSON; the suite's stay text
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    ).get_json()["token"]
    remember_secret(token)
    return ImportActions(client, {"Authorization": f"Bearer {token}"})


def _web_metrics(client, token: str) -> dict:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    return parse(answer.get_data(as_text=True))


def _file(good: int, bad: int) -> bytes:
    tag = uuid.uuid4().hex[:8]
    rows = [{"Username": f"m{tag}{i}", "Email": f"m{tag}{i}@example.com"} for i in range(good)]
    rows += [{"Username": f"b{tag}{i}", "Email": "not-an-email"} for i in range(bad)]
    return to_csv(rows, headers=["Username", "Email"])


def _start(imports: ImportActions, data: bytes, request_id: str | None = None):
    up = imports.upload(data)
    assert up.status_code == 201, up.get_json()
    mapping = basic_mapping(imports.reference("roles")["Agent"])
    headers = imports.auth | ({"X-Request-ID": request_id} if request_id else {})
    body = {"upload_id": up.get_json()["upload_id"], "mapping": mapping}
    started = imports.client.post("/api/v1/imports", headers=headers, json=body)
    assert started.status_code == 202, started.get_json()
    return started


def test_every_series_of_the_contract_exists_from_start_up(world, web):
    imports = web
    served = _web_metrics(imports.client, world.settings.metrics_token)
    worker = world.scrape()  # the worker started with this module and has done nothing yet
    for name, labels in CONTRACT_SERIES:
        assert value(served, name, **labels) is not None, f"web lacks {name}{labels}"
        assert value(worker, name, **labels) is not None, f"worker lacks {name}{labels}"
    names = {name for name, _ in served}
    assert set(HTTP_SERIES) <= names
    assert "user_import_oldest_pending_unit_age_seconds" in names
    # Labels are bounded: route templates, never an id.
    routes = {dict(labels).get("route") for name, labels in served if name == "http_requests_total"}
    assert all(route == "unmatched" or not re.search(r"[0-9a-f]{32}", route) for route in routes)


def test_metrics_answer_401_without_the_token_on_both_ports(world, web):
    imports = web
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": world.settings.metrics_token}):
        answer = imports.client.get("/metrics", headers=headers)
        assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "unauthorized"
        status, body = fetch(world.url, headers=headers)
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    admin = imports.client.get("/metrics", headers=imports.auth)  # an admin's API token is not the one
    assert admin.status_code == 401


def test_an_import_moves_the_counters_by_its_rows_and_its_request_id_reaches_the_worker_log(world, web):
    imports = web
    before = world.scrape()
    request_id = f"it-{uuid.uuid4().hex}"
    started = _start(imports, _file(good=7, bad=3), request_id)
    assert started.headers["X-Request-ID"] == request_id
    job_id = started.get_json()["id"]
    final = imports.wait_done(job_id)
    assert (final["status"], final["created"], final["errors"]) == ("succeeded", 7, 3)
    after = world.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("user_import_rows_total", outcome="created") == 7
    assert moved("user_import_rows_total", outcome="error") == 3
    assert moved("user_import_rows_total", outcome="duplicate") == 0
    assert moved("user_import_rows_total", outcome="cancelled") == 0
    assert moved("user_import_jobs_total", status="succeeded") == 1
    assert moved("user_import_jobs_total", status="failed") == 0
    assert moved("user_import_password_hash_seconds_count") == 7
    assert moved("user_import_claim_seconds_count") >= 2  # validation and at least one chunk

    # Every line of the worker's log is one JSON object; its lines for this import carry the id.
    # (Celery prints its start-up banner to the terminal itself: that is not a log line.)
    text = world.worker.log_path.read_text().splitlines()
    lines = [json.loads(line) for line in text if line.startswith("{")]
    assert len(lines) > 5 and all(
        {"ts", "level", "logger", "message", "request_id"} <= set(line) for line in lines
    )
    mine = [line for line in lines if line.get("job") == job_id]
    assert mine and all(line["request_id"] == request_id for line in mine)
    assert {line.get("chunk") for line in mine} >= {0}
    assert all(isinstance(line.get("tenant"), int) and line.get("worker") for line in mine)


def test_the_slot_a_request_sends_carries_its_request_id_in_the_message_headers(base_settings, clean_db):
    """Read from the broker itself: a queue nobody consumes keeps the message the web sent."""
    from redis import Redis

    settings = base_settings.with_(task_queue=f"rid-{uuid.uuid4().hex}")
    client = create_app(settings).test_client()
    token = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    ).get_json()["token"]
    remember_secret(token)
    imports = ImportActions(client, {"Authorization": f"Bearer {token}"})
    _start(imports, _file(good=1, bad=0), "rid-in-headers")
    broker = Redis.from_url(settings.redis_url)
    try:
        message = json.loads(broker.lindex(settings.task_queue, 0))
        assert message["headers"]["task"] == "imports.slot"
        assert message["headers"]["request_id"] == "rid-in-headers"
    finally:
        broker.delete(settings.task_queue)


@pytest.mark.parametrize(
    "offered",
    ["x" * 65, "abc\r\nX-Injected: 1", "abc\ndef", "idé-ünïcode", "has space", "semi;colon", ""],
    ids=["too-long", "crlf", "lf", "non-ascii", "space", "semicolon", "empty"],
)
def test_a_hostile_request_id_is_replaced(client, offered):
    # Through the WSGI environ, as a server hands over what the client sent (raw bytes as latin-1).
    raw = offered.encode("utf-8").decode("latin-1")
    answer = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": raw})
    given = answer.headers["X-Request-ID"]
    assert given != raw and TOKEN_SHAPE.fullmatch(given)


def test_a_good_request_id_comes_back_and_each_answer_has_one(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc.DEF_1-2"}).headers["X-Request-ID"]
        == "abc.DEF_1-2"
    )
    first, second = (client.get("/no/such/page").headers["X-Request-ID"] for _ in range(2))
    assert TOKEN_SHAPE.fullmatch(first) and first != second


def test_json_log_lines_of_the_web_parse_and_carry_the_request_id(base_settings, clean_db):
    import logging

    from shared import log_context

    app = create_app(base_settings.with_(log_format="json"))
    stream = io.StringIO()
    log_context.configure("json", stream=stream)

    @app.get("/_log_probe")
    def _probe():
        logging.getLogger("probe").info("probe job=%s", "j1")
        return "ok"

    app.test_client().get("/_log_probe", headers={"X-Request-ID": "probe-1"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {"ts": lines[-1]["ts"], "level": "INFO", "logger": "probe", "message": "probe job=j1",
            "request_id": "probe-1"} == lines[-1]  # fmt: skip
    log_context.configure(base_settings.log_format)


def test_gunicorn_adds_up_its_processes_and_writes_json_lines(base_settings, tmp_path):
    """Two web processes under gunicorn, as in production: /metrics counts the requests of both,
    whichever answers the scrape, and every line gunicorn and the app write is JSON."""
    import os
    import signal
    import sys
    import time
    from pathlib import Path

    from scripts.run import free_port
    from tests.support.workers import worker_env

    if not base_settings.database_url.startswith("sqlite"):
        pytest.skip("gunicorn's processes are counted once, on SQLite (the database plays no part)")
    settings = base_settings.with_(log_format="json")
    port = free_port()
    env = worker_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), "WEB_CONCURRENCY": "2"}
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "--config", "python:web.gunicorn_config", "--bind", f"127.0.0.1:{port}",
               "--access-logfile", "-", "web.asgi:create_asgi()"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if fetch(f"{url}/healthz", headers={"X-Request-ID": "gun-0"})[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        for i in range(1, 20):
            assert fetch(f"{url}/healthz", headers={"X-Request-ID": f"gun-{i}"})[0] == 200
        for _ in range(4):  # each scrape may reach either process; each sees both processes' counts
            status, body = fetch(f"{url}/metrics", settings.metrics_token)
            assert status == 200, body
            assert (
                value(parse(body), "http_requests_total", method="GET", route="/healthz", status="200") == 20
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    # gunicorn's own lines, and the access lines of its uvicorn workers (web.gunicorn_config.Worker)
    assert {"gunicorn.error", "uvicorn.access"} <= loggers, loggers
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(line) for line in lines)


@pytest.mark.skipif(promtool() is None, reason="promtool is missing (Debian's prometheus package)")
def test_promtool_accepts_the_scrape_config_and_the_alert_rules(tmp_path):
    rules = subprocess.run(["promtool", "check", "rules", str(DEPLOY / "alerts.yml")], capture_output=True,
                           text=True)  # fmt: skip
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # The full check opens the token file and the rule files: give it a token where the config says.
    token = tmp_path / "metrics_token"
    token.write_text("t")
    config = (DEPLOY / "prometheus.yml").read_text().replace("/etc/prometheus/metrics_token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    checked = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout + checked.stderr


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs and all(panel["datasource"]["type"] == "prometheus" for panel in dashboard["panels"])
    return exprs


def test_every_metric_the_dashboard_and_the_alerts_query_exists(world, web, tmp_path):
    imports = web
    exposed = {name for name, _ in _web_metrics(imports.client, world.settings.metrics_token)}
    exposed |= {name for name, _ in world.scrape()}
    alerts = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    exprs = _dashboard_exprs() + [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {m for expr in exprs for m in re.findall(r"\b((?:user_import|http)_[a-z_]+)\b", expr)}
    assert used and used <= exposed, sorted(used - exposed)
    if promtool():  # the dashboard's queries are valid PromQL: promtool checks them as recording rules
        recorded = [{"record": f"panel:q{i}", "expr": e} for i, e in enumerate(_dashboard_exprs())]
        rules = {"groups": [{"name": "dashboard", "rules": recorded}]}
        (tmp_path / "dashboard_rules.yml").write_text(json.dumps(rules))
        checked = subprocess.run(["promtool", "check", "rules", str(tmp_path / "dashboard_rules.yml")],
                                 capture_output=True, text=True)  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus is missing (Debian's prometheus package)"
)
def test_a_real_prometheus_scrapes_web_and_worker_and_sees_the_import(world, web, tmp_path):
    if not world.settings.database_url.startswith("sqlite"):
        pytest.skip("the Prometheus scrape runs once, on SQLite (the counters are checked on both above)")
    imports = web
    served = ServedApp(imports.client.application)
    prometheus = Prometheus(
        tmp_path,
        world.settings.metrics_token,
        {
            "web": served.url.removeprefix("http://"),
            "workers": f"127.0.0.1:{world.settings.worker_metrics_port}",
        },
    )
    try:
        prometheus.wait_for('sum(up{job=~"web|workers"})', 2)
        job_id = _start(imports, _file(good=4, bad=1)).get_json()["id"]
        assert imports.wait_done(job_id)["status"] == "succeeded"
        created = value(world.scrape(), "user_import_rows_total", outcome="created")
        result = prometheus.wait_for('user_import_rows_total{job="workers",outcome="created"}', created)
        print("prometheus:", json.dumps(result))  # the closing note quotes a run's answer
        posts = value(_web_metrics(imports.client, world.settings.metrics_token), "http_requests_total",
                      method="POST", route="/api/v1/imports", status="202")  # fmt: skip
        prometheus.wait_for(
            'http_requests_total{job="web",method="POST",route="/api/v1/imports",status="202"}', posts
        )
        assert created >= 4
    finally:
        prometheus.close()
        served.close()
