"""Credentials by invitation in the browser: the mapping's choice, the result page's counts and resend,
the invited user's link, and the Users table's states and Resend (real worker, real SMTP server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.models import SavedMapping, User
from tests.support.browser import download, import_id_of, read_csv, write_csv
from tests.support.secrets import remember_secret

pytestmark = pytest.mark.browser
LINK = re.compile(r"/invite/([A-Za-z0-9_-]{43})")
CHOSEN = "Chosen-Password-2026"
INVITE_CHOICE = "Email each user an invitation to set their own password"


def people_file(tmp_path: Path, prefix: str, count: int) -> Path:
    rows = [["Username", "Email"], *[[f"{prefix}{i}", f"{prefix}{i}@invite.example"] for i in range(count)]]
    return write_csv(tmp_path / f"{prefix}.csv", rows)


def import_by_invitation(ui, page, path: Path) -> str:
    """Upload, choose the invitation on the mapping page, Import Users; the result page's import id."""
    ui.upload(path)
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    page.get_by_label(INVITE_CHOICE).check()
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    return import_id_of(page)


def expect_invitations(page, **counts: int) -> None:
    """The result page's invitation counts as a user reads them; pending shows only while mails go."""
    from playwright.sync_api import expect

    for state, value in counts.items():
        expect(page.locator(f"#invitations-{state}")).to_have_text(str(value))
    if counts.get("pending", 0) == 0:
        expect(page.locator("#invitations-pending-item")).to_be_hidden()


def token_for(mailbox, address: str, after: int) -> str:
    """The link's token in the first mail to `address` received after the first `after`."""
    plain = mailbox.wait_for(address, after).get_body(preferencelist=("plain",)).get_content()
    found = LINK.search(plain)
    assert found, plain
    remember_secret(found.group(1))
    return found.group(1)


def mails_to(mailbox, address: str, after: int) -> int:
    return sum(1 for m in mailbox.messages[after:] if m["To"] == address)


@pytest.fixture
def visitor(browser, live_url: str) -> Iterator:
    """A second browser (its own cookies) for the invited user."""
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def choose_password(visitor, token: str, password: str = CHOSEN) -> None:
    from playwright.sync_api import expect

    visitor.goto(f"/invite/{token}")
    expect(visitor.get_by_role("heading", name="Choose your password")).to_be_visible()
    visitor.get_by_label("Password", exact=True).fill(password)
    visitor.get_by_label("Password again").fill(password)
    visitor.get_by_role("button", name="Save password and continue").click()
    expect(visitor.get_by_role("heading", name="My account")).to_be_visible()


def test_an_import_by_invitation_mails_each_user_and_its_result_shows_the_counts(
    page, ui, live_worker, mailbox, sessions, tmp_path
):
    from playwright.sync_api import expect

    ui.login()
    ui.upload(people_file(tmp_path, "inva", 3))
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    temporary = page.get_by_label("Temporary passwords in the success details")
    expect(temporary).to_be_checked()  # the default, as the API's
    page.get_by_label(INVITE_CHOICE).check()
    ui.screenshot("invitations-1-mapping")
    # Saved with the mapping, like the other settings.
    page.get_by_label("Name of this mapping").fill("Invited agents")
    page.get_by_role("button", name="Save this mapping").click()
    expect(page.locator("#save-status")).to_contain_text("Saved as “Invited agents”")
    with sessions() as session:
        saved = session.scalar(select(SavedMapping).where(SavedMapping.name == "Invited agents"))
        assert saved.mapping["credentials"] == "invitation"
    seen = len(mailbox.messages)
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    job_id = import_id_of(page)

    expect(page.get_by_role("region", name="Invitations")).to_be_visible()
    expect_invitations(page, sent=3, failed=0, accepted=0, expired=0, pending=0)
    expect(page.locator("#invitations-status")).to_have_text("0 of 3 users have chosen their password.")
    expect(page.locator("#invitation-failures")).to_be_hidden()
    # No temporary password was made: no warning about downloading them, nothing to regenerate.
    expect(page.get_by_text("cannot be shown again after you click Continue")).to_have_count(0)
    expect(page.locator("#invitation-note")).to_be_visible()
    expect(page.get_by_role("button", name="Regenerate passwords")).to_be_hidden()
    expect(page.get_by_role("button", name="Resend invitations")).to_be_enabled()
    ui.screenshot("invitations-2-result")
    for i in range(3):
        assert mails_to(mailbox, f"inva{i}@invite.example", seen) == 1

    success = read_csv(download(page, "Download Success Details"))
    assert "Invitation" in success[0] and "Temporary Password" not in success[0]
    assert [(r["Username"], r["Invitation"]) for r in success] == [(f"inva{i}", "sent") for i in range(3)]

    # Continue goes to the import's users (nothing to acknowledge), which show their invitations.
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#import-filter")).to_contain_text(job_id)
    expect(page.locator("#users-table .invitation-state")).to_have_text(["sent"] * 3)

    # The next file with these columns is mapped by the saved mapping: by invitation again.
    ui.upload(people_file(tmp_path, "invb", 1))
    ui.wait_for_mapping()
    expect(page.locator("#suggested-name")).to_have_text("Invited agents")
    expect(page.get_by_label(INVITE_CHOICE)).to_be_checked()


def test_an_invited_user_chooses_a_password_and_an_admin_resends_to_another(
    page, ui, visitor, live_worker, mailbox, sessions, tmp_path
):
    from playwright.sync_api import expect

    ui.login()
    seen = len(mailbox.messages)
    job_id = import_by_invitation(ui, page, people_file(tmp_path, "invc", 2))
    expect_invitations(page, sent=2, pending=0)
    token = token_for(mailbox, "invc0@invite.example", seen)
    old_link = token_for(mailbox, "invc1@invite.example", seen)

    choose_password(visitor, token)
    ui.screenshot("invitations-3-account")  # the admin's page; the visitor's is below
    visitor.get_by_role("button", name="Log out").first.click()
    expect(visitor.get_by_role("heading", name="Log in")).to_be_visible()
    visitor.get_by_label("Workspace").fill("demo")
    visitor.get_by_label("Username").fill("invc0")
    visitor.get_by_label("Password").fill(CHOSEN)
    visitor.get_by_role("button", name="Log in").click()
    expect(visitor.get_by_role("heading", name="My account")).to_be_visible()
    visitor.goto(f"/invite/{token}")
    expect(visitor.get_by_text("already used")).to_be_visible()

    with sessions() as session:
        ids = dict(session.execute(select(User.username, User.id).where(User.import_id == job_id)).all())
    page.set_viewport_size({"width": 1366, "height": 768})  # the states fit the table without a column
    page.goto(f"/users?import_id={job_id}")
    wrap = page.locator("#users-table").evaluate(
        "t => t.closest('.table-wrap').scrollWidth <= t.closest('.table-wrap').clientWidth"
    )
    assert wrap, "the Users table scrolls sideways with invitation states"
    accepted, waiting = (page.locator(f'tr[data-user-id="{ids[name]}"]') for name in ("invc0", "invc1"))
    expect(accepted.locator(".invitation-state")).to_have_text("accepted")
    expect(accepted.get_by_role("button", name="Resend the invitation of invc0")).to_have_count(0)
    expect(waiting.locator(".invitation-state")).to_have_text("sent")
    ui.screenshot("invitations-4-users-table")
    seen = len(mailbox.messages)
    waiting.get_by_role("button", name="Resend the invitation of invc1").click()
    expect(waiting.locator(".invitation-state")).to_have_text("pending")
    expect(waiting.get_by_role("button", name="Resend the invitation of invc1")).to_be_disabled()

    # The import's result page follows the new mail until it is sent.
    page.goto(f"/imports/{job_id}")
    expect_invitations(page, sent=1, accepted=1, pending=0)
    assert mails_to(mailbox, "invc1@invite.example", seen) == 1
    assert len(mailbox.messages) == seen + 1  # to nobody else
    fresh = token_for(mailbox, "invc1@invite.example", seen)
    assert fresh != old_link
    visitor.goto(f"/invite/{old_link}")
    expect(visitor.get_by_text("replaced by a newer one")).to_be_visible()
    page.goto(f"/users?import_id={job_id}")
    expect(waiting.locator(".invitation-state")).to_have_text("sent")


def test_resend_invitations_on_the_result_page_mails_only_those_who_have_not_accepted(
    page, ui, visitor, live_worker, mailbox, tmp_path
):
    from playwright.sync_api import expect

    ui.login()
    seen = len(mailbox.messages)
    job_id = import_by_invitation(ui, page, people_file(tmp_path, "invd", 3))
    expect_invitations(page, sent=3, pending=0)
    choose_password(visitor, token_for(mailbox, "invd1@invite.example", seen))

    page.goto(f"/imports/{job_id}")
    expect_invitations(page, sent=2, accepted=1, pending=0)
    expect(page.locator("#invitations-status")).to_have_text("1 of 3 users have chosen their password.")
    seen = len(mailbox.messages)
    page.get_by_role("button", name="Resend invitations").click()
    dialog = page.get_by_role("dialog", name="Resend invitations?")
    expect(dialog).to_contain_text("2 users who have not accepted get a new invitation email")
    ui.screenshot("invitations-5-resend-confirm")
    dialog.get_by_role("button", name="Send new invitations").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#invitations-status")).to_have_text(
        "New invitations went to 2 users; 1 of 3 users have chosen their password."
    )
    expect_invitations(page, sent=2, accepted=1, failed=0, expired=0, pending=0)
    ui.screenshot("invitations-6-resent")
    received = sorted(m["To"] for m in mailbox.messages[seen:])
    assert received == ["invd0@invite.example", "invd2@invite.example"]  # not invd1, who accepted
    for address in received:
        remember_secret(token_for(mailbox, address, seen))
