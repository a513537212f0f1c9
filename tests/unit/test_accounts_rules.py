"""Pure rules behind logins: allowed networks, safe redirects, TOTP steps, recovery codes, SMTP_URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from shared.accounts import recovery_codes, totp
from shared.accounts.networks import check_address
from shared.settings import Settings, SettingsError
from web.redirects import safe_next


@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        (None, "198.51.100.1", True),
        ([], "198.51.100.1", True),
        (["127.0.0.0/8"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.1", True),  # a single address is a /32
        (["10.0.0.0/8"], "127.0.0.1", False),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "127.0.0.1", False),
        (["127.0.0.0/8"], "::ffff:127.0.0.1", True),
        (["127.0.0.0/8"], "not an address", False),
        (["127.0.0.0/8"], None, False),
        (["garbage", "127.0.0.0/8"], "127.0.0.1", True),
        (["garbage"], "127.0.0.1", False),
    ],
)
def test_allowed_networks(networks, address, allowed):
    assert check_address(networks, address).allowed is allowed


def test_malformed_stored_networks_are_named_and_allow_nothing():
    result = check_address(["10.0.0.0/33", "fe80::/200"], "10.0.0.1")
    assert not result.allowed and result.invalid == ["10.0.0.0/33", "fe80::/200"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/users?tab=desks", "/users?tab=desks"),
        ("/\t/127.0.0.1:9/x", None),
        ("//evil.example/x", None),
        ("/\\evil.example", None),
        ("\\\\evil.example", None),
        ("https://evil.example/", None),
        ("javascript:alert(1)", None),
        ("users", None),
        ("/x\r\nSet-Cookie: a=b", None),
        ("/" + "a" * 3000, None),
        ("", None),
        (None, None),
    ],
)
def test_next_accepts_same_site_paths_only(target, expected):
    assert safe_next(target) == expected


def test_totp_accepts_one_step_of_clock_skew_and_never_a_step_twice():
    secret = totp.new_secret()
    now = datetime.now(UTC)
    current = pyotp.TOTP(secret).timecode(now)
    for steps in (-1, 0, 1):
        code = pyotp.TOTP(secret).at(now + timedelta(seconds=30 * steps))
        assert totp.matching_step(secret, code, now) == current + steps
    far = pyotp.TOTP(secret).at(now + timedelta(seconds=90))
    assert totp.matching_step(secret, far, now) is None
    this = pyotp.TOTP(secret).at(now)
    assert totp.matching_step(secret, this, now, after_step=current) is None
    assert totp.matching_step(secret, "12a456", now) is None


def test_enrolment_uri_names_the_account_and_the_qr_is_drawn_without_inline_style():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "demo", "bob")
    assert uri.startswith("otpauth://totp/Dialer:bob%40demo?") and "issuer=Dialer" in uri
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "style" not in svg and "<script" not in svg


def test_recovery_codes_read_the_same_however_typed():
    assert recovery_codes.normalise("ABCD-efgh jkmn-PQRS") == "abcdefghjkmnpqrs"
    assert recovery_codes.looks_like_recovery_code("abcd-efgh-jkmn-pqrs")
    assert not recovery_codes.looks_like_recovery_code("123456")


@pytest.mark.parametrize(
    "url",
    ["http://u:secret@mail.example", "smtp://u:secret@", "smtp://u:secret@host:port", "secret.example:25"],
)
def test_bad_smtp_url_is_refused_without_echoing_it(url, tmp_path):
    env = {"VAR_DIR": str(tmp_path), "SECRET_KEY": "k", "FLOWER_BASIC_AUTH": "a:b", "METRICS_TOKEN": "t"}
    env["SMTP_URL"] = url
    env["ENCRYPTION_KEY"] = Settings().encryption_key
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert "SMTP_URL" in str(caught.value) and "secret" not in str(caught.value)
    good = env | {"SMTP_URL": "smtp://user:p%40ss@mail.example:587"}
    assert Settings.from_env(good).smtp_url == good["SMTP_URL"]
