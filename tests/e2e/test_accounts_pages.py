"""The account pages over HTTP: server-side sessions, login steps, hardening, admin views."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.models import WebSession, utcnow
from tests.support.accounts import (
    ADMIN_PASSWORD,
    NEW_PASSWORD,
    TEMP_PASSWORD,
    add_user,
    csrf_token,
    page_login,
    wait_until,
)


def test_logout_ends_a_copied_cookie(app, client):
    page_login(client, "admin", ADMIN_PASSWORD)
    copied = client.get_cookie("session").value
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/users")}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/users").headers["Location"].startswith("/login")
    assert thief.get("/api/v1/roles").status_code == 401


def test_session_id_changes_at_login(client):
    client.get("/login")
    before = client.get_cookie("session").value
    page_login(client, "admin", ADMIN_PASSWORD)
    assert client.get_cookie("session").value != before


def test_idle_session_ends_after_the_users_timeout(client, session, settings):
    add_user(session, settings, "ivo", session_timeout_minutes=15)
    assert page_login(client, "ivo").headers["Location"] == "/users"
    assert client.get("/users").status_code == 200
    session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert client.get("/users").headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "target",
    [
        "%2F%09%2F127.0.0.1%3A9%2Fx",
        "//evil.example/x",
        "/%5Cevil.example",
        "https://evil.example/",
        "%2F%0A%2Fevil",
    ],
)
def test_login_never_redirects_off_site(client, target):
    resp = page_login(client, "admin", ADMIN_PASSWORD, next_path=target)
    assert resp.headers["Location"] == "/users"


def test_every_answer_carries_security_headers(client):
    page_login(client, "admin", ADMIN_PASSWORD)
    for path in (
        "/login",
        "/users",
        "/account",
        "/api/v1/roles",
        "/api/v1/nope",
        "/static/app.css",
        "/healthz",
    ):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_style_or_handler(client, session, settings):
    import re

    page_login(client, "admin", ADMIN_PASSWORD)
    for path in ("/login", "/users", "/users?tab=roles", "/users?tab=log", "/account", "/imports/new"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), path


def test_agent_with_email_code_gets_the_account_page(client, session, settings, worker, mailbox):
    add_user(session, settings, "amy", role="Agent", auth_type="email_otp", must_change_password=True)
    seen = len(mailbox.messages)
    assert page_login(client, "amy").headers["Location"] == "/login/code"
    page = client.get("/login/code").get_data(as_text=True)
    assert "a***@demo.example" in page
    code = mailbox.code_for("amy@demo.example", after=seen)
    wait_until(lambda: client.get("/login/code/status").get_json()["delivery"] == "sent")
    wrong = client.post(
        "/login/code", data={"code": "not-it", "csrf_token": csrf_token(client, "/login/code")}
    )
    assert wrong.status_code == 401 and b"The code is wrong" in wrong.data
    step = client.post("/login/code", data={"code": code, "csrf_token": csrf_token(client, "/login/code")})
    assert step.headers["Location"] == "/login/password"
    token = csrf_token(client, "/login/password")
    short = client.post(
        "/login/password", data={"new_password": "short", "confirm_password": "short", "csrf_token": token}
    )
    assert short.status_code == 422 and b"at least 12 characters" in short.data
    done = client.post(
        "/login/password",
        data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "csrf_token": token},
    )
    assert done.headers["Location"] == "/account"
    account = client.get("/account").get_data(as_text=True)
    assert "Email - with one-time code" in account and "Change password" in account
    assert client.get("/users").headers["Location"] == "/account"


def test_code_page_says_when_the_mail_could_not_be_sent(client, session, settings, worker, mailbox):
    add_user(session, settings, "sam", role="Agent", auth_type="email_otp")
    with mailbox.down():
        page_login(client, "sam")
        wait_until(lambda: client.get("/login/code/status").get_json()["delivery"] == "failed")
        told = client.post(
            "/login/code", data={"code": "123456", "csrf_token": csrf_token(client, "/login/code")}
        )
        assert told.status_code == 503 and b"Try again" in told.data
    seen = len(mailbox.messages)
    resend = client.post("/login/code/resend", data={"csrf_token": csrf_token(client, "/login/code")})
    assert resend.headers["Location"] == "/login/code"
    code = mailbox.code_for("sam@demo.example", after=seen)
    done = client.post("/login/code", data={"code": code, "csrf_token": csrf_token(client, "/login/code")})
    assert done.headers["Location"] == "/account"


def test_account_password_change_ends_other_sessions(app, client, session, settings):
    add_user(session, settings, "olga", role="Agent")
    other = app.test_client()
    page_login(client, "olga")
    page_login(other, "olga")
    assert other.get("/account").status_code == 200
    token = csrf_token(client, "/account")
    form = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "csrf_token": token}
    wrong = client.post("/account/password", data=form | {"current_password": "nope"})
    assert wrong.status_code == 422 and b"current password is wrong" in wrong.data
    ok = client.post("/account/password", data=form | {"current_password": TEMP_PASSWORD})
    assert ok.headers["Location"] == "/account?changed=1"
    assert client.get("/account").status_code == 200
    assert other.get("/account").headers["Location"].startswith("/login")


def test_users_table_shows_auth_enrolment_and_lock_and_the_log_tab(client, session, settings):
    add_user(
        session, settings, "locky", role="Agent", auth_type="google_2fa", locked_at=utcnow(), failed_logins=3
    )
    page_login(client, "admin", ADMIN_PASSWORD)
    page = client.get("/users").get_data(as_text=True)
    assert "Google 2FA App" in page and "Not enrolled" in page and "Locked" in page
    assert 'aria-label="Unlock locky"' in page
    client.post("/api/v1/auth/token", json={"tenant": "demo", "username": "locky", "password": "bad"})
    log = client.get("/users?tab=log&filter=login").get_data(as_text=True)
    assert "login.failed" in log and "login.succeeded" in log and "locky" in log and "bad" not in log


def test_roles_tab_sets_a_roles_authentication_default(client, session, settings):
    agent = add_user(session, settings, "rolf", role="Agent")
    page_login(client, "admin", ADMIN_PASSWORD)
    url = f"/users/roles/{agent.role_id}/auth-default"
    resp = client.post(
        url, data={"auth_default": "email_otp", "csrf_token": csrf_token(client, "/users?tab=roles")}
    )
    assert resp.headers["Location"] == f"/users?tab=roles&saved={agent.role_id}"
    assert '<option value="email_otp" selected>' in client.get(resp.headers["Location"]).get_data(
        as_text=True
    )
    assert "Email" in client.get("/users").get_data(as_text=True)
    bad = client.post(url, data={"auth_default": "sms", "csrf_token": csrf_token(client, "/users?tab=roles")})
    assert bad.status_code == 400 and b"auth_default must be one of" in bad.data
