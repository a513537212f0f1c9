"""docker-compose.yml and the Dockerfile name things that exist (Docker itself is not run here)."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import inspect
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from celery import Celery

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
APP_SERVICES = [name for name, spec in SERVICES.items() if "build" in spec]
VENV_BIN = Path(sys.executable).parent


def _command(service: str) -> list[str]:
    command = SERVICES[service].get("command")
    assert command, f"service {service} has no command"
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(argv: list[str], *names: str) -> str | None:
    """The value of an option given as `-A x`, `--app x` or `--app=x`."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def test_the_stack_has_every_service():
    assert set(SERVICES) == {"redis", "postgres", "migrate", "web", "worker", "beat", "flower"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_runs_a_program_the_package_installs(service):
    argv = _command(service)
    program = argv[0]
    if program == "python":  # python -m <module of the image's packages>
        assert argv[1] == "-m" and argv[2].split(".")[0] in {"web", "worker", "shared"}, argv
        assert importlib.util.find_spec(argv[2]) is not None, f"{service}: no module {argv[2]}"
        return
    assert program in {"celery", "gunicorn", "alembic"}, f"{service} runs {program}"
    assert (VENV_BIN / program).exists(), f"{program} is not installed beside {sys.executable}"


def test_flower_runs_celery_flower_with_metrics_behind_its_login():
    assert _command("flower")[:3] == ["python", "-m", "worker.flower"]
    source = (ROOT / "worker" / "flower.py").read_text()
    assert '"-A", "worker", "flower"' in source and "protect_metrics()" in source


@pytest.mark.parametrize("service", [s for s in APP_SERVICES if _command(s)[0] == "celery"])
def test_celery_service_names_a_module_with_a_celery_app(service):
    argv = _command(service)
    module_name = _option(argv, "-A", "--app")
    assert module_name, f"{service}: celery without -A"
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, "app", None), Celery), f"{module_name} has no Celery `app`"
    assert {"worker", "beat", "flower"} & set(argv), f"{service}: no celery subcommand"


def test_web_names_an_application_factory_that_exists():
    argv = _command("web")
    assert argv[0] == "gunicorn"
    spec = argv[-1]
    match = re.fullmatch(r"([\w.]+):(\w+)\(\)", spec)
    assert match, f"gunicorn app spec {spec!r} is not module:factory()"
    module = importlib.import_module(match.group(1))
    factory = getattr(module, match.group(2), None)
    assert callable(factory), f"{spec}: {match.group(2)} missing from {match.group(1)}"
    inspect.signature(factory).bind()  # gunicorn calls it with no arguments
    assert _option(argv, "--bind", "-b") == "0.0.0.0:8000"
    assert _option(argv, "--worker-class", "-k") == "gthread"  # SSE streams hold a thread


def test_migrate_finds_alembic_ini_and_its_migrations():
    assert _command("migrate") == ["alembic", "upgrade", "head"]
    ini = ROOT / "alembic.ini"
    assert ini.is_file()
    parser = configparser.ConfigParser(defaults={"here": str(ROOT)})
    parser.read(ini)
    location = Path(parser.get("alembic", "script_location"))
    if not location.is_absolute():
        location = ROOT / location  # relative to the working directory, the repo root (/app)
    assert location.is_dir(), f"script_location {location} missing"
    assert (location / "env.py").is_file()
    assert any((location / "versions").glob("*.py")), "no migration in versions/"


def test_every_service_has_a_restart_policy():
    for name, spec in SERVICES.items():
        assert "restart" in spec, f"{name} has no restart policy"
    assert SERVICES["migrate"]["restart"] == "no"  # a one-shot job
    for name in SERVICES.keys() - {"migrate"}:
        assert SERVICES[name]["restart"] in {"always", "unless-stopped"}, name


def test_redis_postgres_and_web_have_healthchecks():
    for name in ("redis", "postgres", "web"):
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_services_start_in_order():
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_data_lives_in_named_volumes():
    volumes = set(COMPOSE.get("volumes") or {})
    for name in ("postgres", "redis"):
        mounts = SERVICES[name].get("volumes", [])
        assert any(m.split(":", 1)[0] in volumes for m in mounts), f"{name} keeps its data in no volume"


def test_secrets_are_required_and_the_database_is_postgresql():
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in ("SECRET_KEY", "ENCRYPTION_KEY", "FLOWER_BASIC_AUTH", "POSTGRES_PASSWORD"):
        assert "${" + variable + ":?" in text, f"{variable} is not required"
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["REDIS_URL"].startswith("redis://redis:"), name


def test_app_environment_names_only_settings_that_exist():
    source = (ROOT / "shared" / "settings.py").read_text()
    known = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source)) | {"WEB_CONCURRENCY"}  # gunicorn reads it
    for name in APP_SERVICES:
        unknown = set(SERVICES[name]["environment"]) - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"


def test_flower_asks_for_a_login():
    argv = _command("flower")
    assert SERVICES["flower"]["environment"].get("FLOWER_BASIC_AUTH") or _option(argv, "--basic-auth")


def test_dockerfile_builds_a_non_root_image_that_serves_the_web():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}
    for needed in ("alembic.ini", "shared", "web", "worker"):
        assert re.search(rf"^COPY\s+{re.escape(needed)}\s", text, re.MULTILINE), f"{needed} not copied"
    cmd = re.search(r"^CMD\s+(\[.*?\])\s*$", text, re.MULTILINE | re.DOTALL)
    assert cmd
    argv = yaml.safe_load(cmd.group(1).replace("\\\n", " "))
    assert argv[0] == "gunicorn"
    assert argv[-1] == _command("web")[-1]
