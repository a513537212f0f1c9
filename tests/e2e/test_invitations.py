"""Credentials by invitation (API.md): an import whose users get an emailed link to choose their own
password, through the API with a real worker, a real SMTP server (aiosmtpd), on both databases."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import psutil
import pytest
from redis import Redis
from sqlalchemy import func, select, update

from shared.models import AuditEvent, Invitation, User, utcnow
from tests.support.accounts import csrf_token, page_login, wait_until
from tests.support.builders import basic_mapping, parse_csv, to_csv
from tests.support.secrets import remember_secret
from worker.tasks import run_purge

LINK = re.compile(r"https?://[^\s\"'<>]+/invite/([A-Za-z0-9_-]{43})")
CHOSEN = "Chosen-Password-2026"


def people(prefix: str, count: int) -> bytes:
    rows = [{"Username": f"{prefix}{i}", "Email": f"{prefix}{i}@invite.example"} for i in range(count)]
    return to_csv(rows, headers=["Username", "Email"])


def invited(imports, **extra) -> dict:
    return basic_mapping(imports.reference("roles")["Agent"]) | {"credentials": "invitation"} | extra


def mails_to(mailbox, address: str, after: int = 0) -> list:
    return [m for m in mailbox.messages[after:] if m["To"] == address]


def token_in(message) -> str:
    """The link's token from the plain-text part (the HTML part carries the same link)."""
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    found = LINK.search(plain)
    assert found, plain
    assert found.group(1) in html
    remember_secret(found.group(1))
    return found.group(1)


def wait_invitations(imports, job_id: str, expected: dict, timeout: float = 60) -> dict:
    """Poll the status until its invitation counts include `expected`."""
    seen: dict = {}

    def reached() -> bool:
        nonlocal seen
        seen = imports.status(job_id)
        counts = seen.get("invitations") or {}
        return all(counts.get(k) == v for k, v in expected.items())

    try:
        wait_until(reached, timeout)
    except AssertionError:
        raise AssertionError(f"invitations never reached {expected}: {seen.get('invitations')}") from None
    return seen


def accept(client, token: str, password: str = CHOSEN):
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(
        f"/invite/{token}",
        data={
            "new_password": password,
            "confirm_password": password,
            "csrf_token": csrf_token(client, f"/invite/{token}"),
        },
    )


def test_each_user_gets_one_mail_whose_link_sets_the_password_once(imports, worker, mailbox, session, app):
    seen = len(mailbox.messages)
    done = imports.run(people("inv", 3), invited(imports))
    assert (done["status"], done["created"]) == ("succeeded", 3), done
    final = wait_invitations(imports, done["id"], {"sent": 3, "pending": 0})
    assert final["invitations"] == {"pending": 0, "sent": 3, "failed": 0, "accepted": 0, "expired": 0}
    for i in range(3):
        assert len(mails_to(mailbox, f"inv{i}@invite.example", seen)) == 1
    message = mails_to(mailbox, "inv0@invite.example", seen)[0]
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert "Demo" in plain or "demo" in plain  # the tenant
    assert "expires" in plain and "did not expect" in plain
    token = token_in(message)

    # No temporary password was made: the user cannot log in before accepting.
    user = session.scalar(select(User).where(User.username == "inv0"))
    assert user.password_hash.startswith("!") and not user.must_change_password
    status, text = imports.download(done["id"], "success")
    assert status == 200
    lines = parse_csv(text)
    assert [line["Invitation"] for line in lines] == ["sent"] * 3
    assert "Temporary Password" not in text.splitlines()[0] and token not in text

    browser = app.test_client()
    resp = accept(browser, token)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account"), resp.get_data(
        as_text=True
    )
    assert browser.get("/account").status_code == 200  # logged in, on their page
    # The link is spent; the chosen password logs in.
    again = app.test_client().get(f"/invite/{token}")
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    assert page_login(app.test_client(), "inv0", CHOSEN).status_code == 302
    assert wait_invitations(imports, done["id"], {"accepted": 1, "sent": 2})
    users = imports.client.get(f"/api/v1/users?import_id={done['id']}", headers=imports.auth).get_json()
    assert sorted(u["invitation"] for u in users["items"]) == ["accepted", "sent", "sent"]
    session.expire_all()
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("invitation.%"))))
    assert {"invitation.sent", "invitation.accepted"} <= actions
    for details in session.scalars(select(AuditEvent.details).where(AuditEvent.action.like("invitation.%"))):
        assert token not in str(details)


def test_digits_only_and_second_factors_go_on_as_a_login_does(imports, worker, mailbox, app):
    seen = len(mailbox.messages)
    done = imports.run(people("pin", 1), invited(imports, digits_only_passwords=True, auth_type="email_otp"))
    wait_invitations(imports, done["id"], {"sent": 1})
    token = token_in(mails_to(mailbox, "pin0@invite.example", seen)[0])
    browser = app.test_client()
    refused = accept(browser, token, "not-digits-at-all")
    assert refused.status_code == 422 and "digits only" in refused.get_data(as_text=True)
    codes_before = len(mailbox.messages)
    resp = accept(browser, token, "123456789012")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code")
    code = mailbox.code_for("pin0@invite.example", after=codes_before)
    done_code = browser.post(
        "/login/code", data={"code": code, "csrf_token": csrf_token(browser, "/login/code")}
    )
    assert done_code.status_code == 302 and done_code.headers["Location"].endswith("/account")

    seen = len(mailbox.messages)
    two = imports.run(people("totp", 1), invited(imports, auth_type="google_2fa"))
    wait_invitations(imports, two["id"], {"sent": 1})
    token = token_in(mails_to(mailbox, "totp0@invite.example", seen)[0])
    resp = accept(app.test_client(), token)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/enrol")


def test_bad_links_are_refused_with_clear_pages(imports, worker, mailbox, session, sessions, settings, app):
    seen = len(mailbox.messages)
    done = imports.run(people("bad", 2), invited(imports))
    wait_invitations(imports, done["id"], {"sent": 2})
    old = token_in(mails_to(mailbox, "bad0@invite.example", seen)[0])
    expiring = token_in(mails_to(mailbox, "bad1@invite.example", seen)[0])
    browser = app.test_client()
    for token in ("short", "x" * 43, "../../etc/passwd", "A" * 500):
        resp = browser.get(f"/invite/{token}")
        assert resp.status_code == 404 and "not valid" in resp.get_data(as_text=True), token
    # The clock moves past the expiry.
    session.execute(
        update(Invitation)
        .where(Invitation.token_hash.is_not(None))
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    session.commit()
    resp = browser.get(f"/invite/{expiring}")
    assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    assert wait_invitations(imports, done["id"], {"expired": 2})
    run_purge(sessions, settings)  # beat's purge records the expiry of the links nobody opened
    session.expire_all()
    assert session.scalar(select(func.count()).where(AuditEvent.action == "invitation.expired")) == 2
    # A resend voids the old links and mails only those who have not accepted.
    seen = len(mailbox.messages)
    resent = imports.post(done["id"], "resend-invitations")
    assert resent.status_code == 202, resent.get_json()
    wait_invitations(imports, done["id"], {"sent": 2, "expired": 0, "pending": 0})
    assert len(mailbox.messages) - seen == 2
    resp = browser.get(f"/invite/{old}")
    assert resp.status_code == 410 and "replaced" in resp.get_data(as_text=True)
    fresh = token_in(mails_to(mailbox, "bad0@invite.example", seen)[0])
    assert accept(browser, fresh).status_code == 302
    seen = len(mailbox.messages)
    assert imports.post(done["id"], "resend-invitations").status_code == 202
    wait_invitations(imports, done["id"], {"sent": 1, "accepted": 1, "pending": 0})
    assert [m["To"] for m in mailbox.messages[seen:]] == ["bad1@invite.example"]  # not to bad0, who accepted
    session.expire_all()
    assert session.scalar(select(func.count()).where(AuditEvent.action == "invitation.resent")) == 3


def test_temporary_password_imports_have_no_invitations(imports, worker):
    done = imports.run(people("tmp", 1), basic_mapping(imports.reference("roles")["Agent"]))
    assert "invitations" not in done or done["invitations"] is None
    resp = imports.post(done["id"], "resend-invitations")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "no_invitations"


def test_a_users_resend_shows_in_the_status_at_once_and_there_are_no_passwords_to_regenerate(
    imports, worker, mailbox, session
):
    seen = len(mailbox.messages)
    done = imports.run(people("one", 2), invited(imports))
    wait_invitations(imports, done["id"], {"sent": 2, "pending": 0})
    # Its success.csv shows no passwords: new ones would be set and never shown.
    regenerated = imports.post(done["id"], "regenerate-passwords")
    assert regenerated.status_code == 409, regenerated.get_json()
    assert regenerated.get_json()["error"]["code"] == "regenerate_not_allowed"
    user = session.scalar(select(User).where(User.username == "one1"))
    mailbox.hold("one1@invite.example")
    resp = imports.client.post(f"/api/v1/users/{user.id}/resend-invitation", headers=imports.auth)
    assert resp.status_code == 202 and resp.get_json()["invitation"] == "pending", resp.get_json()
    mailbox.wait_held()
    # The stored status had settled with nothing on its way: the resend tells its readers at once.
    counts = imports.status(done["id"])["invitations"]
    assert (counts["pending"], counts["sent"]) == (1, 1), counts
    mailbox.release()
    wait_invitations(imports, done["id"], {"sent": 2, "pending": 0})
    mails = mails_to(mailbox, "one1@invite.example", seen)
    assert len(mails) == 2
    for message in mails:
        token_in(message)


def test_undo_and_password_reset_void_the_links(imports, worker, mailbox, session, app):
    seen = len(mailbox.messages)
    done = imports.run(people("void", 2), invited(imports))
    wait_invitations(imports, done["id"], {"sent": 2})
    first = token_in(mails_to(mailbox, "void0@invite.example", seen)[0])
    second = token_in(mails_to(mailbox, "void1@invite.example", seen)[0])
    user = session.scalar(select(User).where(User.username == "void0"))
    reset = imports.client.post(f"/api/v1/users/{user.id}/reset-password", headers=imports.auth)
    assert reset.status_code == 200
    remember_secret(reset.get_json()["temporary_password"])
    assert app.test_client().get(f"/invite/{first}").status_code == 410
    assert imports.post(done["id"], "undo").status_code == 202
    assert imports.wait_settled(done["id"])["status"] == "undone"
    resp = app.test_client().get(f"/invite/{second}")
    assert resp.status_code == 404 and "withdrawn" in resp.get_data(as_text=True)


def test_smtp_down_the_import_succeeds_and_the_retry_delivers_once(imports, worker, mailbox, session):
    seen = len(mailbox.messages)
    with mailbox.down():
        done = imports.run(people("down", 3), invited(imports))
        assert done["status"] == "succeeded"
        mine = select(Invitation.last_error).where(Invitation.job_id == done["id"])

        def all_refused() -> bool:
            session.expire_all()
            return [bool(e) for e in session.scalars(mine)] == [True] * 3

        wait_until(all_refused)  # each was tried, and found no server
        assert all("could not be reached" in e for e in session.scalars(mine))
        status = wait_invitations(imports, done["id"], {"pending": 3})
        assert status["invitations"]["sent"] == 0
    # The server is back: the retry (SMTP_RETRY_SECONDS, doubled) delivers each mail once.
    wait_invitations(imports, done["id"], {"sent": 3, "pending": 0}, timeout=90)
    for i in range(3):
        assert len(mails_to(mailbox, f"down{i}@invite.example", seen)) == 1
    # A refusal (451) is retried; a lasting one (550) fails with the server's reason.
    seen, refused = len(mailbox.messages), mailbox.refused
    mailbox.refuse_next(1)
    again = imports.run(people("busy", 2), invited(imports))
    wait_invitations(imports, again["id"], {"sent": 2, "pending": 0}, timeout=90)
    assert mailbox.refused == refused + 1  # the first was answered 451, and went through on its retry
    assert sorted(m["To"] for m in mailbox.messages[seen:]) == [
        "busy0@invite.example",
        "busy1@invite.example",
    ]


def test_a_refused_address_fails_with_the_servers_reason(imports, worker, mailbox, session, app):
    mailbox.reject_address("nobody0@invite.example")
    try:
        done = imports.run(people("nobody", 2), invited(imports))
        final = wait_invitations(imports, done["id"], {"failed": 1, "sent": 1, "pending": 0})
    finally:
        mailbox.reject_address(None)
    reason = session.scalar(select(Invitation.last_error).where(Invitation.state == "failed"))
    assert "550" in reason and "No such user" in reason
    lines = parse_csv(imports.download(final["id"], "success")[1])
    assert sorted(line["Invitation"] for line in lines) == ["failed", "sent"]
    session.expire_all()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.failed"))
    assert "550" in event.details["reason"]


def test_a_worker_killed_while_sending_mails_nobody_twice(hooked_world, mailbox, session, app):
    world = hooked_world({}, chunk_size=50)
    imports = world.imports
    seen = len(mailbox.messages)
    monitor = RedisMonitor(world.settings.redis_url)
    mailbox.hold("kill3@invite.example")
    try:
        up = imports.upload(people("kill", 8)).get_json()
        job = imports.start(up["upload_id"], invited(imports)).get_json()
        mailbox.wait_held()
        children = psutil.Process(world.worker.proc.pid).children(recursive=True)
        for child in children:
            child.kill()  # SIGKILL while the server holds kill3's mail: its fate is unknown to the worker
    finally:
        mailbox.release()
    final = wait_invitations(imports, job["id"], {"pending": 0}, timeout=120)
    counts = final["invitations"]
    monitor.stop()
    assert counts["sent"] + counts["failed"] == 8, counts
    for i in range(8):
        assert len(mails_to(mailbox, f"kill{i}@invite.example", seen)) <= 1, i
    # Every mail that went out holds a link that works; none is in Redis (Celery messages included).
    tokens = [token_in(m) for m in mailbox.messages[seen:] if m["To"].startswith("kill")]
    assert len(tokens) >= 7
    for token in tokens:
        assert token.encode() not in monitor.seen
        assert app.test_client().get(f"/invite/{token}").status_code == 200
    assert b"imports.slot" in monitor.seen  # the monitor did see the Celery traffic


class RedisMonitor:
    """Everything the Redis server is sent while it runs (MONITOR): Celery messages, statuses, leases."""

    def __init__(self, url: str) -> None:
        self.client = Redis.from_url(url)
        self.seen = b""
        self._monitor = self.client.monitor()
        self._stop = threading.Event()
        self._monitor.connection.send_command("MONITOR")
        self._monitor.connection.read_response()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = self._monitor.connection
        while not self._stop.is_set():
            try:
                if connection.can_read(timeout=0.1):
                    line = connection.read_response()
                    self.seen += line if isinstance(line, bytes) else str(line).encode()
            except Exception:  # the connection closed at stop
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._monitor.connection.disconnect()


@pytest.fixture(autouse=True)
def _no_hold(mailbox):
    yield
    mailbox.release()
    mailbox.reject_address(None)


def test_another_tenants_link_and_invitations_stay_theirs(imports, worker, mailbox, session, settings, app):
    from shared.dialer.tenants import create_admin, create_tenant

    seen = len(mailbox.messages)
    done = imports.run(people("mine", 1), invited(imports))
    wait_invitations(imports, done["id"], {"sent": 1})
    token = token_in(mails_to(mailbox, "mine0@invite.example", seen)[0])
    mine = session.scalar(select(User).where(User.username == "mine0"))
    other = create_tenant(session, "other")
    create_admin(session, settings, other, "boss", "boss@other.example", "Other-Pass-1")
    session.commit()
    theirs = {
        "Authorization": "Bearer "
        + imports.client.post(
            "/api/v1/auth/token", json={"tenant": "other", "username": "boss", "password": "Other-Pass-1"}
        ).get_json()["token"]
    }
    # Another tenant's admin can neither resend this import's nor this user's invitations.
    assert (
        imports.client.post(f"/api/v1/imports/{done['id']}/resend-invitations", headers=theirs).status_code
        == 404
    )
    assert (
        imports.client.post(f"/api/v1/users/{mine.id}/resend-invitation", headers=theirs).status_code == 404
    )
    # The link opened in a browser logged in to the other workspace names its own workspace and user,
    # and using it logs that browser in as the invited user, never as the one logged in before.
    browser = app.test_client()
    form = {
        "tenant": "other",
        "username": "boss",
        "password": "Other-Pass-1",
        "csrf_token": csrf_token(browser),
    }
    assert browser.post("/login", data=form).headers["Location"].endswith("/users")
    assert "boss" in browser.get("/users").get_data(as_text=True)
    page = browser.get(f"/invite/{token}").get_data(as_text=True)
    assert "mine0" in page and "demo" in page and "boss" not in page
    resp = accept(browser, token)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    account = browser.get("/account").get_data(as_text=True)
    assert "mine0" in account and "boss" not in account
