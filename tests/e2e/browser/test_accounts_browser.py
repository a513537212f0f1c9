"""Imported agents log in for real in the browser: Google 2FA enrolment, emailed codes, unlock."""

from __future__ import annotations

import pytest

from shared.models import utcnow
from tests.support.accounts import NEW_PASSWORD, TEMP_PASSWORD, add_user, totp_code

pytestmark = pytest.mark.browser


def _csp_violations(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def _log_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Workspace").fill("demo")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_agent_with_google_2fa_enrols_changes_password_and_logs_in_again(page, ui, sessions, settings):
    from playwright.sync_api import expect

    with sessions() as session:
        add_user(session, settings, "gina", role="Agent", auth_type="google_2fa", must_change_password=True)
    violations = _csp_violations(page)

    _log_in(page, "gina", TEMP_PASSWORD)
    expect(page.get_by_role("heading", name="Set up Google Authenticator")).to_be_visible()
    expect(page.locator("svg.qr")).to_be_visible()
    ui.screenshot("account-enrol-qr")
    secret = page.locator("#totp-secret").text_content().strip()
    page.get_by_label("Code from the app").fill(totp_code(secret))
    page.get_by_role("button", name="Verify and enrol").click()

    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(8)
    lines = page.locator("#recovery-codes code").evaluate_all(
        "codes => codes.map(c => c.getClientRects().length)"
    )
    assert lines == [1] * 8, "a recovery code wraps in the middle"
    ui.screenshot("account-recovery-codes")
    page.get_by_role("link", name="I have saved them, continue").click()

    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    ui.screenshot("account-forced-password-change")
    page.get_by_role("button", name="Save password").click()

    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    expect(page.locator("#enrolment")).to_contain_text("Enrolled")
    ui.screenshot("account-page-agent")
    page.get_by_role("button", name="Log out").first.click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    _log_in(page, "gina", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    ui.screenshot("account-totp-code")
    # The enrolment spent this step's code; the app's next one (one step ahead) is accepted.
    page.get_by_label("Code from the app").fill(totp_code(secret, steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    assert violations == []


def test_agent_logs_in_with_an_emailed_code_and_an_admin_unlocks_a_user(
    page, ui, sessions, settings, mailbox, live_worker
):
    from playwright.sync_api import expect

    with sessions() as session:
        add_user(session, settings, "eve", role="Agent", auth_type="email_otp")
        add_user(session, settings, "lockedlou", role="Agent", locked_at=utcnow(), failed_logins=5)
    violations = _csp_violations(page)

    seen = len(mailbox.messages)
    _log_in(page, "eve", TEMP_PASSWORD)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    code = mailbox.code_for("eve@demo.example", after=seen)
    expect(page.locator("#delivery")).to_contain_text("has been sent")
    ui.screenshot("account-email-code")
    page.get_by_label("Code from the email").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    page.get_by_role("button", name="Log out").first.click()

    ui.login()
    row = page.locator("#users-table tr", has_text="lockedlou")
    expect(row.locator(".lock-state")).to_have_text("Locked")
    ui.screenshot("users-table-locked")
    row.get_by_role("button", name="Unlock lockedlou").click()
    expect(row.locator(".lock-state")).to_have_text("No")
    ui.open_tab("Log")
    expect(page.locator("#log-table")).to_contain_text("account.unlocked")
    expect(page.locator("#log-table")).to_contain_text("login.succeeded")
    ui.screenshot("users-management-log")
    assert violations == []
