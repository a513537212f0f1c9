"""Logging in honours what the import set (API.md "Accounts"), through the JSON API.

Real parts: SQLite and PostgreSQL, Redis, a Celery worker sending mail to an aiosmtpd server.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from shared.models import ApiToken, AuditEvent, OneTimeCode, User, utcnow
from tests.support.accounts import (
    NEW_PASSWORD,
    TEMP_PASSWORD,
    add_user,
    creds,
    page_login,
    totp_code,
    wait_until,
)
from tests.support.builders import basic_mapping

TOKEN = "/api/v1/auth/token"


def error(resp) -> str:
    return resp.get_json()["error"]["code"]


def test_imported_admin_with_google_2fa_enrols_changes_password_and_logs_in(client, imports, worker):
    admin_role = imports.reference("roles")["Admin"]
    rows = "Username,Email\nalice,alice@demo.example\n"
    mapping = basic_mapping(admin_role) | {
        "auth_type": "google_2fa",
        "security": {"force_password_change": True, "lock_after_failed_logins": 3},
    }
    job = imports.run(rows.encode(), mapping)
    assert job["status"] == "succeeded", job
    _, success = imports.download(job["id"], "success")
    temp = next(csv.DictReader(io.StringIO(success)))["Temporary Password"]

    first = client.post(TOKEN, json=creds("alice", temp))
    assert first.status_code == 403 and error(first) == "enrolment_required"
    secret = first.get_json()["error"]["details"]["secret"]
    assert first.get_json()["error"]["details"]["otpauth_uri"].startswith("otpauth://totp/")
    again = client.post(TOKEN, json=creds("alice", temp))
    assert again.get_json()["error"]["details"]["secret"] == secret  # the same until enrolled

    code = totp_code(secret)
    change = client.post(TOKEN, json=creds("alice", temp, code=code))
    assert change.status_code == 403 and error(change) == "password_change_required"
    short = client.post(TOKEN, json=creds("alice", temp, code=code, new_password="short"))
    assert short.status_code == 422 and error(short) == "password_too_short"
    same = client.post(TOKEN, json=creds("alice", temp, code=code, new_password=temp))
    assert error(same) == "password_unchanged"
    done = client.post(TOKEN, json=creds("alice", temp, code=code, new_password=NEW_PASSWORD))
    assert done.status_code == 200, done.get_json()
    recovery = done.get_json()["recovery_codes"]
    assert len(recovery) == 8 and done.headers["Cache-Control"] == "no-store"

    assert error(client.post(TOKEN, json=creds("alice", temp))) == "invalid_credentials"
    ask = client.post(TOKEN, json=creds("alice", NEW_PASSWORD))
    assert ask.status_code == 401 and ask.get_json()["error"]["details"] == {"method": "google_2fa"}
    reused = client.post(TOKEN, json=creds("alice", NEW_PASSWORD, code=code))
    assert error(reused) == "invalid_code"  # the enrolment's code is spent
    skewed = client.post(TOKEN, json=creds("alice", NEW_PASSWORD, code=totp_code(secret, steps=1)))
    assert skewed.status_code == 200  # the phone's clock one step ahead
    by_recovery = client.post(TOKEN, json=creds("alice", NEW_PASSWORD, code=recovery[0].upper()))
    assert by_recovery.status_code == 200
    assert error(client.post(TOKEN, json=creds("alice", NEW_PASSWORD, code=recovery[0]))) == "invalid_code"


def test_totp_far_off_clock_or_malformed_code_is_refused(client, session, settings):
    user = add_user(session, settings, "tom", auth_type="google_2fa")
    secret = client.post(TOKEN, json=creds("tom")).get_json()["error"]["details"]["secret"]
    for code in (totp_code(secret, steps=3), totp_code(secret, steps=-3), "12345", "abcdef", "1" * 500):
        resp = client.post(TOKEN, json=creds("tom", code=code))
        assert resp.status_code == 401 and error(resp) == "invalid_code", code
    session.refresh(user)
    assert user.totp_enrolled_at is None and user.failed_logins == 5


def test_email_code_is_mailed_works_once_and_only_for_its_user(client, session, settings, worker, mailbox):
    add_user(session, settings, "emma", auth_type="email_otp", must_change_password=True)
    add_user(session, settings, "eric", auth_type="email_otp")
    seen = len(mailbox.messages)
    ask = client.post(TOKEN, json=creds("emma"))
    assert ask.status_code == 401 and error(ask) == "code_required"
    assert ask.get_json()["error"]["details"] == {"method": "email_otp"}
    code = mailbox.code_for("emma@demo.example", after=seen)

    seen = len(mailbox.messages)
    assert error(client.post(TOKEN, json=creds("eric"))) == "code_required"
    eric_code = mailbox.code_for("eric@demo.example", after=seen)
    if eric_code != code:  # one user's code never opens another's account
        assert error(client.post(TOKEN, json=creds("emma", code=eric_code))) == "invalid_code"

    change = client.post(TOKEN, json=creds("emma", code=code))
    assert error(change) == "password_change_required"  # the code is not spent by a step
    done = client.post(TOKEN, json=creds("emma", code=code, new_password=NEW_PASSWORD))
    assert done.status_code == 200, done.get_json()
    reused = client.post(TOKEN, json=creds("emma", NEW_PASSWORD, code=code))
    assert error(reused) == "invalid_code"

    # The body never holds the code's hash or the password; the database keeps no plain code.
    row = session.scalar(select(OneTimeCode).join(User).where(User.username == "emma"))
    assert row.code_encrypted is None and code not in row.code_hash


def test_expired_email_code_is_refused(client, session, settings, worker, mailbox):
    add_user(session, settings, "ella", auth_type="email_otp")
    seen = len(mailbox.messages)
    client.post(TOKEN, json=creds("ella"))
    code = mailbox.code_for("ella@demo.example", after=seen)
    session.execute(update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    resp = client.post(TOKEN, json=creds("ella", code=code))
    assert resp.status_code == 401 and error(resp) == "invalid_code"


def test_refusing_mail_server_is_retried_until_it_takes_the_code(client, session, settings, worker, mailbox):
    add_user(session, settings, "rita", auth_type="email_otp")
    seen, refused = len(mailbox.messages), mailbox.refused
    mailbox.refuse_next(1)
    assert error(client.post(TOKEN, json=creds("rita"))) == "code_required"
    code = mailbox.code_for("rita@demo.example", after=seen)
    assert mailbox.refused == refused + 1  # the first try was refused, the task retried
    assert client.post(TOKEN, json=creds("rita", code=code)).status_code == 200


def test_mail_server_down_tells_the_user_to_try_again_and_nothing_is_half_done(
    client, session, settings, worker, mailbox
):
    user = add_user(session, settings, "dora", auth_type="email_otp")
    with mailbox.down():
        assert error(client.post(TOKEN, json=creds("dora"))) == "code_required"
        row = session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user.id))
        # The task gives up after its retries (1 s, then 2 s).
        wait_until(lambda: session.refresh(row) or row.send_failed_at is not None)
        assert row.code_encrypted is None
        told = client.post(TOKEN, json=creds("dora", code="123456"))
        assert told.status_code == 503 and error(told) == "code_not_sent"
        assert "Try again" in told.get_json()["error"]["message"]
    session.refresh(user)
    assert user.failed_logins == 0 and user.last_login_at is None
    assert session.scalar(select(ApiToken).where(ApiToken.user_id == user.id)) is None
    seen = len(mailbox.messages)
    assert error(client.post(TOKEN, json=creds("dora"))) == "code_required"  # trying again works
    code = mailbox.code_for("dora@demo.example", after=seen)
    assert client.post(TOKEN, json=creds("dora", code=code)).status_code == 200


@pytest.mark.parametrize(
    ("networks", "address", "status"),
    [
        (["10.0.0.0/8"], "127.0.0.1", 403),
        (["127.0.0.0/8"], "127.0.0.1", 200),
        (["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5", 200),
        (["::1/128"], "::1", 200),
        (["127.0.0.0/8"], "::ffff:127.0.0.1", 200),
        (["not-a-network", "300.1.1.0/24"], "127.0.0.1", 403),
        ("127.0.0.0/8", "127.0.0.1", 403),  # stored in the wrong shape: allows nothing
    ],
)
def test_allowed_networks_are_checked_against_the_client_address(
    client, session, settings, networks, address, status
):
    add_user(session, settings, "nina", allowed_networks=networks)
    resp = client.post(TOKEN, json=creds("nina"), environ_base={"REMOTE_ADDR": address})
    assert resp.status_code == status, resp.get_json()
    if status == 403:
        assert error(resp) == "network_not_allowed"


def test_forwarded_address_counts_only_behind_trusted_proxies(app, session, settings):
    from web import create_app

    add_user(session, settings, "pia", allowed_networks=["203.0.113.0/24"])
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    direct = app.test_client().post(TOKEN, json=creds("pia"), headers=forwarded)
    assert error(direct) == "network_not_allowed"
    proxied = create_app(settings.with_(trusted_proxies=1)).test_client()
    assert proxied.post(TOKEN, json=creds("pia"), headers=forwarded).status_code == 200


def test_lock_after_failed_logins_until_an_admin_unlocks(client, session, settings, auth):
    user = add_user(session, settings, "lena", lock_after_failed_logins=3)
    for _ in range(3):
        assert error(client.post(TOKEN, json=creds("lena", "wrong-password"))) == "invalid_credentials"
    locked = client.post(TOKEN, json=creds("lena"))
    assert locked.status_code == 423 and error(locked) == "account_locked"
    # A wrong password on a locked account looks like any wrong password.
    assert error(client.post(TOKEN, json=creds("lena", "wrong-password"))) == "invalid_credentials"
    shown = client.get(f"/api/v1/users/{user.id}", headers=auth).get_json()
    assert shown["locked"] is True and shown["failed_logins"] == 4
    unlocked = client.post(f"/api/v1/users/{user.id}/unlock", headers=auth)
    assert unlocked.status_code == 200 and unlocked.get_json()["locked"] is False
    assert client.post(TOKEN, json=creds("lena")).status_code == 200


def test_password_reset_unlocks_and_ends_sessions_and_tokens(client, app, session, settings, auth):
    user = add_user(session, settings, "rosa", lock_after_failed_logins=1)
    token = client.post(TOKEN, json=creds("rosa")).get_json()["token"]
    browser = app.test_client()
    assert page_login(browser, "rosa").headers["Location"] == "/users"
    assert browser.get("/users").status_code == 200

    reset = f"/api/v1/users/{user.id}/reset-password"
    temp = client.post(reset, headers=auth).get_json()["temporary_password"]
    assert client.get("/api/v1/roles", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert browser.get("/users").headers["Location"].startswith("/login")

    client.post(TOKEN, json=creds("rosa", "wrong-password"))
    assert error(client.post(TOKEN, json=creds("rosa", temp))) == "account_locked"
    temp = client.post(reset, headers=auth).get_json()["temporary_password"]
    ok = client.post(TOKEN, json=creds("rosa", temp, new_password=NEW_PASSWORD))
    assert ok.status_code == 200


def test_wrong_codes_are_counted_toward_the_lock(client, session, settings):
    user = add_user(session, settings, "gus", auth_type="google_2fa")  # no lock setting of its own
    secret = client.post(TOKEN, json=creds("gus")).get_json()["error"]["details"]["secret"]
    client.post(TOKEN, json=creds("gus", code=totp_code(secret)))
    wrong = "000000" if totp_code(secret) != "000000" else "111111"
    for _ in range(settings.lock_after_failed_codes):
        assert error(client.post(TOKEN, json=creds("gus", code=wrong))) == "invalid_code"
    locked = client.post(TOKEN, json=creds("gus", code=totp_code(secret)))
    assert locked.status_code == 423
    session.refresh(user)
    assert user.locked_at is not None and user.failed_logins == settings.lock_after_failed_codes


def test_login_attempts_are_rate_limited_per_client(session, settings):
    from web import create_app

    add_user(session, settings, "ray", auth_type="google_2fa")
    client = create_app(settings.with_(login_rate_limit="3 per minute")).test_client()
    # A client address of its own, so no earlier run within the minute shares the count.
    address = {
        "REMOTE_ADDR": f"127.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    }
    answers = [client.post(TOKEN, json=creds("ray", code="000000"), environ_base=address) for _ in range(4)]
    assert [a.status_code for a in answers][-1] == 429
    assert error(answers[-1]) == "too_many_requests"


def test_revoked_token_answers_401(client, auth):
    assert client.get("/api/v1/roles", headers=auth).status_code == 200
    assert client.delete(TOKEN, headers=auth).status_code == 204
    assert client.get("/api/v1/roles", headers=auth).status_code == 401
    assert client.delete(TOKEN, headers=auth).status_code == 401
    assert client.delete(TOKEN).status_code == 401


def test_idle_token_ends_after_the_users_session_timeout(client, session, settings):
    user = add_user(session, settings, "ida", session_timeout_minutes=5)
    token = client.post(TOKEN, json=creds("ida")).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/roles", headers=bearer).status_code == 200
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id)
        .values(last_used_at=utcnow() - timedelta(minutes=6))
    )
    session.commit()
    assert client.get("/api/v1/roles", headers=bearer).status_code == 401


def test_unknown_user_and_wrong_password_answer_alike(client, session, settings):
    add_user(session, settings, "lock1", lock_after_failed_logins=1, auth_type="google_2fa")
    client.post(TOKEN, json=creds("lock1", "wrong-password"))  # now locked
    bodies = [
        client.post(TOKEN, json=creds(name, password)).get_json()
        for name, password in (
            ("ghost", TEMP_PASSWORD),
            ("lock1", "wrong-password"),
            ("admin", "wrong-password"),
        )
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["error"]["code"] == "invalid_credentials"


def test_effective_auth_type_follows_user_then_role_then_tenant(client, session, settings, auth):
    own = add_user(session, settings, "own", role="Agent", auth_type="email_otp")
    inherits = add_user(session, settings, "inherits", role="Agent")
    roles = {r["name"]: r["id"] for r in client.get("/api/v1/roles", headers=auth).get_json()["items"]}

    def effective(user) -> tuple[str, str]:
        body = client.get(f"/api/v1/users/{user.id}", headers=auth).get_json()
        return body["auth_type"], body["effective_auth_type"]

    assert effective(inherits) == ("default", "disabled")  # the demo tenant's default
    patched = client.patch(
        f"/api/v1/roles/{roles['Agent']}", headers=auth, json={"auth_default": "google_2fa"}
    )
    assert patched.status_code == 200 and patched.get_json()["auth_default"] == "google_2fa"
    assert effective(inherits) == ("default", "google_2fa")
    assert effective(own) == ("email_otp", "email_otp")
    bad = client.patch(f"/api/v1/roles/{roles['Agent']}", headers=auth, json={"auth_default": "sms"})
    assert bad.status_code == 400 and error(bad) == "invalid_auth_default"
    back = client.patch(f"/api/v1/roles/{roles['Agent']}", headers=auth, json={"auth_default": None})
    assert back.get_json()["auth_default"] is None
    assert effective(inherits) == ("default", "disabled")


def test_audit_log_records_logins_without_secrets(client, session, settings, auth, worker, mailbox):
    user = add_user(session, settings, "audra", auth_type="email_otp", lock_after_failed_logins=2)
    client.post(TOKEN, json=creds("audra", "wrong-password-1"))
    seen = len(mailbox.messages)
    client.post(TOKEN, json=creds("audra"))
    code = mailbox.code_for("audra@demo.example", after=seen)
    assert client.post(TOKEN, json=creds("audra", code=code)).status_code == 200
    client.post(TOKEN, json=creds("audra", "wrong-password-2"))
    client.post(TOKEN, json=creds("audra", "wrong-password-3"))
    client.post(f"/api/v1/users/{user.id}/unlock", headers=auth)
    events = session.scalars(select(AuditEvent).where(AuditEvent.target == str(user.id))).all()
    actions = [e.action for e in events]
    for action in (
        "login.failed",
        "login.code_sent",
        "login.succeeded",
        "account.locked",
        "account.unlocked",
    ):
        assert action in actions, actions
    stored = repr([(e.action, e.details) for e in events])
    for secret in (TEMP_PASSWORD, "wrong-password-1", code):
        assert secret not in stored
