"""Settings come from the environment strictly, and travel to child processes intact."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.settings import PROJECT_ROOT, Settings, SettingsError, ensure_local_secrets, markdown_table


def test_reading_settings_never_writes_and_names_each_missing_secret(tmp_path):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"VAR_DIR": str(tmp_path), "MAX_ROWS": "abc"})
    for name in ("MAX_ROWS", "SECRET_KEY", "ENCRYPTION_KEY", "FLOWER_BASIC_AUTH"):
        assert name in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_importing_the_apps_reads_nothing_and_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ENCRYPTION_KEY")}
    env |= {"MAX_ROWS": "abc", "VAR_DIR": str(tmp_path)}
    code = (
        "import web, worker\n"
        "try:\n    web.create_app()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("SettingsError MAX_ROWS must be a whole number, got 'abc'")
    assert list(tmp_path.iterdir()) == []


def test_local_secrets_are_generated_once_by_the_run_command(tmp_path):
    ensure_local_secrets(tmp_path)
    first = Settings.from_env({"VAR_DIR": str(tmp_path)})
    ensure_local_secrets(tmp_path)
    again = Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert first.secret_key == again.secret_key and first.encryption_key == again.encryption_key
    assert first.flower_password == again.flower_password
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'app.db'}"
    assert (first.max_rows, first.max_upload_bytes, first.chunk_size) == (500, 5 * 1024 * 1024, 100)
    assert (first.argon2_memory_kib, first.argon2_time_cost, first.argon2_parallelism) == (19456, 2, 1)


def test_round_trip_through_the_environment(tmp_path):
    ensure_local_secrets(tmp_path)
    settings = Settings.from_env(
        {"VAR_DIR": str(tmp_path), "MAX_ROWS": "42", "TASK_QUEUE": "q1", "DEMO_ADMIN_PASSWORD": "x-Y-z-123"}
    )
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_ROWS", "many"),
        ("MAX_ROWS", "0"),
        ("SESSION_COOKIE_SECURE", "maybe"),
        ("ENCRYPTION_KEY", "short"),
        ("FLOWER_BASIC_AUTH", "no-colon"),
    ],
)
def test_bad_values_are_errors_not_silent_defaults(tmp_path, name, value):
    ensure_local_secrets(tmp_path)
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"VAR_DIR": str(tmp_path), name: value})


def test_the_docs_settings_table_is_the_declared_one():
    """docs/operations.md shows every setting as shared/settings.py declares it."""
    page = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    assert markdown_table() in page, "paste the output of `python -m scripts.settings_table` into the page"


def test_one_setting_is_read_alone_strictly():
    assert Settings.one_from_env("web_threads", {"WEB_THREADS": "8"}) == 8
    assert Settings.one_from_env("web_threads", {}) == Settings().web_threads == 32
    with pytest.raises(SettingsError, match="WEB_THREADS must be at least 1, got 0"):
        Settings.one_from_env("web_threads", {"WEB_THREADS": "0"})


def test_secrets_stay_out_of_the_repr():
    settings = Settings(
        secret_key="s3cret-key", flower_basic_auth="ops:fl0wer", demo_admin_password="dem0-pass"
    )
    for secret in ("s3cret-key", "fl0wer", "dem0-pass", settings.encryption_key):
        assert secret not in repr(settings)


def test_the_run_command_generates_the_metrics_token_and_prints_only_its_path(tmp_path, monkeypatch):
    from scripts.run import banner

    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    ensure_local_secrets(tmp_path)
    settings = Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert settings.metrics_token == (tmp_path / "metrics_token").read_text()
    assert (tmp_path / "metrics_token").stat().st_mode & 0o777 == 0o600
    shown = banner(settings, "password")
    assert str(tmp_path / "metrics_token") in shown and settings.metrics_token not in shown
