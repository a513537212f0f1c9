"""docker-compose.yml and the Dockerfile agree with the code they run (Docker itself is not run here).

Each check holds the files against another source of truth (the installed packages, the app's
routes, Settings.from_env, pyproject.toml, the migrations), so that it fails when they drift apart.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import shlex
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from cryptography.fernet import Fernet

from shared.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
APP_SERVICES = [name for name, spec in SERVICES.items() if "build" in spec]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
VENV_BIN = Path(sys.executable).parent
IMAGE_PACKAGES = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
# What an operator puts in .env (README): the secrets compose refuses to start without.
SECRETS = {
    "POSTGRES_PASSWORD": "db-password",
    "SECRET_KEY": "a-secret-key",
    "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "FLOWER_BASIC_AUTH": "ops:flower-password",
    "METRICS_TOKEN": "a-metrics-token",
}
# Read by gunicorn and prometheus-client themselves, not by Settings.
GUNICORN_READS = {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"}


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


def _dist(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras(requirement: str) -> set[str]:
    """The extras a requirement asks for: {"redis"} for celery[redis]."""
    found = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]", requirement)
    return {e.strip() for e in found.group(1).split(",")} if found else set()


def _base_closure() -> set[str]:
    """The distributions a plain `pip install .` brings: the base dependencies and theirs."""
    todo = [(_dist(r), _extras(r)) for r in PYPROJECT["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            wanted = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
            if wanted is None or wanted.group(1) in extras:
                todo.append((_dist(requirement), _extras(requirement)))
    return {name for name, _ in seen}


def _expand(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of ${VAR}, ${VAR:-default} and ${VAR:?error}."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _health_urls(spec: dict) -> list[str]:
    """The HTTP URLs a service's healthcheck calls."""
    return re.findall(r"https?://[^'\"\s]+", str(spec.get("healthcheck") or ""))


def _app_env(env: dict[str, str]) -> dict[str, str]:
    """The environment compose gives the web service (the other app services share the anchor)."""
    return {name: _expand(str(value), env) for name, value in SERVICES["web"]["environment"].items()}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_runs_a_program_of_a_base_dependency(service):
    """The image installs only the base dependencies: a program from an extra would be missing there."""
    argv = _command(service)
    program = argv[0]
    if program == "python":  # python -m <module of the image's packages>
        assert argv[1] == "-m" and argv[2].split(".")[0] in IMAGE_PACKAGES, argv
        assert importlib.util.find_spec(argv[2]) is not None, f"{service}: no module {argv[2]}"
        return
    providers = {
        _dist(dist.metadata["Name"])
        for dist in importlib.metadata.distributions()
        for entry in dist.entry_points
        if entry.group == "console_scripts" and entry.name == program
    }
    assert providers, f"{service} runs {program}, which no installed package provides"
    base = {_dist(r) for r in PYPROJECT["project"]["dependencies"]}
    assert providers & base, f"{service} runs {program} from {providers}, not a base dependency"


def test_flower_runs_the_launcher_whose_login_test_flower_checks(base_settings):
    """test_flower.py starts Flower as `make run` does and knocks; compose must run that same launcher."""
    from scripts.run import processes

    assert _command("flower")[:3] == ["python", *processes(base_settings)["flower"][1:3]]


@pytest.mark.parametrize("service", [s for s in APP_SERVICES if _command(s)[0] == "celery"])
def test_celery_service_names_a_module_with_a_celery_app(service):
    argv = _command(service)
    module_name = _option(argv, "-A", "--app")
    assert module_name, f"{service}: celery without -A"
    module = importlib.import_module(module_name)
    assert isinstance(getattr(module, "app", None), Celery), f"{module_name} has no Celery `app`"
    assert {"worker", "beat", "flower"} & set(argv), f"{service}: no celery subcommand"


def test_web_serves_its_factory_on_the_port_published_and_health_checked():
    argv = _command("web")
    spec = argv[-1]
    match = re.fullmatch(r"([\w.]+):(\w+)\(\)", spec)
    assert match, f"gunicorn app spec {spec!r} is not module:factory()"
    factory = getattr(importlib.import_module(match.group(1)), match.group(2), None)
    assert callable(factory), f"{spec}: {match.group(2)} missing from {match.group(1)}"
    inspect.signature(factory).bind()  # gunicorn calls it with no arguments
    assert _option(argv, "--worker-class", "-k") is None, "the worker class is web.gunicorn_config's"
    assert _option(argv, "--config", "-c") == "python:web.gunicorn_config"
    port = int(_option(argv, "--bind", "-b").rsplit(":", 1)[1])
    published = {int(str(p).rsplit(":", 1)[1]) for p in SERVICES["web"]["ports"]}
    checked = {urlsplit(u).port for u in _health_urls(SERVICES["web"])}
    assert published == {port} and checked == {port}, (port, published, checked)


def test_health_checked_paths_answer_200(client):
    urls = [url for spec in SERVICES.values() for url in _health_urls(spec)]
    assert urls, "no service is health-checked over HTTP"
    for url in urls:
        assert client.get(urlsplit(url).path).status_code == 200, url


def test_migrate_command_brings_an_empty_database_to_the_newest_schema(tmp_path):
    argv = _command("migrate")
    database = tmp_path / "compose.db"
    env = {"PATH": str(VENV_BIN), "DATABASE_URL": f"sqlite:///{database}", "VAR_DIR": str(tmp_path)} | SECRETS
    done = subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    heads = subprocess.run(
        [str(VENV_BIN / "alembic"), "heads"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    ).stdout.split()
    with sqlite3.connect(database) as conn:
        assert [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")] == heads[:1]


def test_app_environment_is_read_by_settings(tmp_path):
    env = _app_env(SECRETS) | {"VAR_DIR": str(tmp_path)}
    settings = Settings.from_env(env)  # empty values mean the defaults
    assert settings.secret_key == SECRETS["SECRET_KEY"] and settings.max_rows == Settings().max_rows
    assert list(tmp_path.iterdir()) == [], "with its secrets given, nothing is generated"
    for name in set(env) - GUNICORN_READS - {"VAR_DIR"}:
        # A value nobody could mean: Settings either refuses it by name or takes it as given.
        try:
            taken = Settings.from_env(env | {name: "x-not-a-value"}).to_env()
        except SettingsError as error:
            assert name in str(error), (name, error)
        else:
            assert taken.get(name) == "x-not-a-value", f"{name} is set by compose but Settings ignores it"


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(secret):
    """A secret missing from .env stops compose with a message instead of running on a default."""
    without = {name: value for name, value in SECRETS.items() if name != secret}
    with pytest.raises(KeyError, match=secret):
        for spec in SERVICES.values():
            for value in (spec.get("environment") or {}).values():
                _expand(str(value), without)


def test_dependencies_between_services_can_be_met():
    volumes = set(COMPOSE.get("volumes") or {})
    for name, spec in SERVICES.items():
        for target, condition in (spec.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} waits for unknown service {target}"
            if condition["condition"] == "service_healthy":
                assert SERVICES[target].get("healthcheck"), f"{name} waits for {target}'s health: none"
            if condition["condition"] == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} restarts, never completes"
        for mount in spec.get("volumes") or []:
            source = mount.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in volumes, f"{name}: volume {source} not declared"


def test_image_code_imports_only_what_the_base_dependencies_install():
    """Development extras (make run, tests) stay out of the image: its code must not need them."""
    packages = IMAGE_PACKAGES
    provided = importlib.metadata.packages_distributions()
    base = _base_closure()
    needed: dict[str, str] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in packages:
                        needed[top] = str(path.relative_to(ROOT))
    for module, where in needed.items():
        dists = {_dist(d) for d in provided.get(module, [])}
        assert dists & base, f"{where} imports {module} ({dists or 'not installed'}), not a base dependency"


def test_dockerfile_builds_the_package_as_compose_runs_it():
    python = re.search(r"^FROM python:(\d+)\.(\d+)", DOCKERFILE, re.MULTILINE)
    assert python, "the image is not built FROM python:X.Y"
    minimum = tuple(int(n) for n in re.findall(r"\d+", PYPROJECT["project"]["requires-python"])[:2])
    assert (int(python.group(1)), int(python.group(2))) >= minimum, "the image's Python is too old"
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert user and user[-1] not in {"root", "0"}, "the image runs as root"
    copied = set(re.findall(r"^COPY\s+(\S+)\s", DOCKERFILE, re.MULTILINE))
    assert IMAGE_PACKAGES | {"alembic.ini"} <= copied, f"not copied into the image: {IMAGE_PACKAGES - copied}"
    cmd = re.search(r"^CMD\s+(\[.*?\])\s*$", DOCKERFILE, re.MULTILINE | re.DOTALL)
    assert cmd and yaml.safe_load(cmd.group(1).replace("\\\n", " ")) == _command("web")
