"""Settings come from the environment strictly, and travel to child processes intact."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError


def test_defaults_generate_local_secrets_once(tmp_path):
    first = Settings.from_env({"VAR_DIR": str(tmp_path)})
    again = Settings.from_env({"VAR_DIR": str(tmp_path)})
    assert first.secret_key == again.secret_key and first.encryption_key == again.encryption_key
    assert first.flower_password == again.flower_password
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'app.db'}"
    assert (first.max_rows, first.max_upload_bytes, first.chunk_size) == (500, 5 * 1024 * 1024, 100)
    assert (first.argon2_memory_kib, first.argon2_time_cost, first.argon2_parallelism) == (19456, 2, 1)


def test_round_trip_through_the_environment(tmp_path):
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
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"VAR_DIR": str(tmp_path), name: value})
