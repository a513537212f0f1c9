"""After an import, in the browser: fix failed rows and retry them, undo, regenerate, saved mappings."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from shared.accounts.passwords import verify_password
from shared.models import Desk, ImportJob, Role, Tenant, User
from tests.support.browser import download, expect_counts, import_id_of, people, read_csv, write_csv

pytestmark = pytest.mark.browser
BROKEN = {  # 7 of 41 rows: index -> (column, bad value, the fix)
    3: ("Email", "user3-at-example.com", "user3@example.com"),
    8: ("Username", "x", "user8"),
    14: ("Email", "", "user14@example.com"),
    20: ("Username", "bad name!", "user20"),
    27: ("Email", "user27@", "user27@example.com"),
    33: ("Username", "user1", "user33"),  # a duplicate of row 3's username
    39: ("Email", "nope", "user39@example.com"),
}


def beside(page, row: int, column: str):
    """The messages shown beside a cell of the failed rows table."""
    return page.locator(f'tr[data-row="{row}"] ul[data-for="{column}"]')


def import_file(ui, page, path, role: str = "Agent") -> None:
    ui.upload(path)
    ui.wait_for_mapping()
    ui.choose_role_from_dialer(role)
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()


def test_failed_rows_fixed_in_the_page_and_retried_end_with_every_user_once(
    page, ui, live_worker, sessions, tmp_path
):
    from playwright.sync_api import expect

    rows = [["Username", "Email", "First name"]]
    fixes = {}
    for i in range(41):
        row = {"Username": f"user{i}", "Email": f"user{i}@example.com", "First name": f"Ann{i}"}
        if i in BROKEN:
            column, bad, fix = BROKEN[i]
            row[column] = bad
            fixes[i + 2] = (column, fix)  # the header is row 1
        rows.append(list(row.values()))
    ui.login()
    import_file(ui, page, write_csv(tmp_path / "agents41.csv", rows))
    expect_counts(page, created=34, duplicates=1, errors=6)
    first = import_id_of(page)

    # Five rows a page, so that corrections must survive paging.
    page.goto(f"/imports/{first}?per_page=5")
    card = page.get_by_role("region", name="Fix failed rows")
    expect(card).to_be_visible()
    expect(page.locator("#rows-status")).to_have_text("7 rows to fix or retry (5 a page).")
    expect(page.locator("#rows-page")).to_have_text("Page 1 of 2")
    email5 = page.get_by_label("Email of row 5")
    expect(email5).to_have_value("user3-at-example.com")
    expect(email5).to_have_attribute("aria-invalid", "true")
    expect(beside(page, 5, "Email")).to_have_text('Email "user3-at-example.com" is not a valid email address')
    ui.screenshot("6-failed-rows")

    # Checked as it is typed: a wrong fix says why, a right one makes the row ready.
    email5.fill("still wrong")
    expect(beside(page, 5, "Email")).to_have_text('Email "still wrong" is not a valid email address')
    email5.fill("user0@example.com")
    expect(beside(page, 5, "Email")).to_have_text('Email "user0@example.com" already exists')
    ui.screenshot("6-failed-rows-checked-as-typed")

    def fix(number: int) -> None:
        column, value = fixes[number]
        page.get_by_label(f"{column} of row {number}").fill(value)
        expect(page.locator(f'tr[data-row="{number}"] .status')).to_have_text("ready")
        expect(beside(page, number, column)).to_be_empty()
        expect(page.get_by_label(f"{column} of row {number}")).not_to_have_attribute("aria-invalid", "true")

    for number in (5, 10, 16, 22, 29):
        fix(number)
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#rows-page")).to_have_text("Page 2 of 2")
    expect(beside(page, 35, "Username")).to_have_text('Username "user1" repeats row 3')
    for number in (35, 41):
        fix(number)
    page.get_by_role("button", name="Previous").click()
    expect(page.get_by_label("Email of row 5")).to_have_value("user3@example.com")  # kept across pages
    expect(page.locator("#retry-note")).to_have_text("7 of 7 rows corrected, 7 ready.")
    ui.screenshot("6-failed-rows-fixed")

    page.get_by_role("button", name="Retry failed rows").click()
    expect(page).not_to_have_url(re.compile(rf"/imports/{first}"))
    ui.wait_for_result()
    expect_counts(page, created=7, duplicates=0, errors=0)
    expect(page.locator("#retry-of")).to_contain_text(f"retries the failed rows of import {first[:8]}")
    expect(page.get_by_role("region", name="Fix failed rows")).to_be_hidden()
    ui.screenshot("6-retry-result")
    second = import_id_of(page)
    with sessions() as session:
        assert session.scalar(select(ImportJob.retry_of).where(ImportJob.id == second)) == first
        names = list(session.scalars(select(User.username).where(User.import_id.in_([first, second]))))
        emails = set(session.scalars(select(User.email).where(User.import_id.in_([first, second]))))
    assert sorted(names) == sorted(f"user{i}" for i in range(41))  # all 41, none twice
    assert emails == {f"user{i}@example.com" for i in range(41)}

    page.goto("/users?tab=imports")
    retry_line = page.locator("#imports-table tbody tr").first
    expect(retry_line).to_contain_text("agents41 (failed rows).csv")
    expect(retry_line).to_contain_text(f"Retry of import {first[:8]}")
    expect(page.locator("#imports-table tbody tr").nth(1)).to_contain_text(f"Retried in import {second[:8]}")
    ui.screenshot("users-management-imports-retry-chain")


def test_undo_an_import_from_its_result_page(page, ui, live_worker, sessions, tmp_path):
    from playwright.sync_api import expect

    ui.login()
    import_file(
        ui,
        page,
        write_csv(tmp_path / "wrong.csv", [["Username", "Email"], *[r[:2] for r in people("oops", 5)]]),
    )
    expect_counts(page, created=5, duplicates=0, errors=0)
    job_id = import_id_of(page)
    manage = page.get_by_role("region", name="Manage this import")
    expect(manage).to_contain_text("Possible until")
    page.get_by_role("button", name="Undo import").click()
    dialog = page.get_by_role("dialog", name="Undo this import?")
    expect(dialog).to_contain_text("This removes 5 users created by this import")
    ui.screenshot("7-undo-confirm")
    dialog.get_by_role("button", name="Remove 5 users").click()
    expect(page.locator("#undo-status")).to_have_text("Undone: 5 users were removed.")
    expect(page.locator("#status-text")).to_have_text("Undone: the users of this import were removed.")
    expect(page.locator("#undone-note")).to_contain_text("5 of its users were removed")
    expect(page.get_by_role("button", name="Undo import")).to_be_hidden()
    expect(page.get_by_role("button", name="Regenerate passwords")).to_be_hidden()
    expect(page.get_by_role("link", name="Download Success Details")).to_be_hidden()
    ui.screenshot("7-undone")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.import_id == job_id)) == 0
    page.goto("/users?tab=imports")
    line = page.locator("#imports-table tbody tr").first
    expect(line).to_contain_text("undone")
    expect(line).to_contain_text("5 removed by undo")


def test_regenerate_the_passwords_of_an_import_whose_success_details_were_lost(
    page, ui, live_worker, sessions, settings, tmp_path
):
    from playwright.sync_api import expect

    ui.login()
    import_file(
        ui,
        page,
        write_csv(tmp_path / "lost.csv", [["Username", "Email"], *[r[:2] for r in people("lost", 4)]]),
    )
    job_id = import_id_of(page)
    page.get_by_role("button", name="Continue").click()  # without downloading the success details
    expect(page.locator("#users-table tbody tr")).to_have_count(4)
    page.goto(f"/imports/{job_id}")
    ui.wait_for_result()
    expect(page.locator("#passwords-gone")).to_be_visible()
    page.get_by_role("button", name="Regenerate passwords").click()
    dialog = page.get_by_role("dialog", name="Regenerate passwords?")
    expect(dialog).to_contain_text("4 users of this import get new temporary passwords")
    ui.screenshot("8-regenerate-confirm")
    dialog.get_by_role("button", name="Regenerate passwords").click()
    expect(page.get_by_role("link", name="Download Success Details")).to_be_visible()
    expect(page.get_by_text("cannot be shown again after you click Continue")).to_be_visible()
    expect(page.locator("#regenerate-status")).to_contain_text("New passwords were made for 4 users")
    expect(page.locator("#passwords-gone")).to_be_hidden()
    ui.screenshot("8-regenerated")
    success = read_csv(download(page, "Download Success Details"))
    assert [r["Username"] for r in success] == [f"lost{i}" for i in range(1, 5)]
    with sessions() as session:
        for line in success:
            user = session.scalar(select(User).where(User.username == line["Username"]))
            assert verify_password(settings, user.password_hash, line["Temporary Password"])
            assert user.must_change_password is True
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#import-filter")).to_contain_text(job_id)


def test_a_saved_mapping_fills_the_page_for_a_second_file_with_its_columns_in_another_order(
    page, ui, live_worker, sessions, tmp_path
):
    from playwright.sync_api import expect

    first = write_csv(
        tmp_path / "week1.csv",
        [["Login", "Mail", "Surname", "Ext"], ["wk1", "wk1@example.com", "Ames", "4001"]],
    )
    ui.login()
    ui.upload(first)
    ui.wait_for_mapping()
    page.get_by_label("Username", exact=True).select_option("col:Login")
    page.get_by_label("Email", exact=True).select_option("col:Mail")
    page.get_by_label("Generate the next available virtual extensions").uncheck()
    page.get_by_label("Virtual Extension", exact=True).select_option("col:Ext")
    page.get_by_label("Last name").select_option("col:Surname")
    ui.choose_role_from_dialer("Supervisor")
    page.get_by_label("Desk", exact=True).select_option(label="From Dialer")
    desks = page.get_by_label("Desk from Dialer")
    desks.select_option(label=desks.locator("option", has_text="Support").text_content())
    page.get_by_label("Email - with one-time code").check()
    page.get_by_label("Name of this mapping").fill("Weekly agents")
    page.get_by_role("button", name="Save this mapping").click()
    expect(page.locator("#save-status")).to_contain_text("Saved as “Weekly agents”")
    expect(page.locator("#saved-list")).to_contain_text("Columns: Login, Mail, Ext, Surname")
    ui.screenshot("9-mapping-saved")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()

    second = write_csv(
        tmp_path / "week2.csv",
        [["Ext", "Notes", "Surname", "Mail", "Login"], ["4002", "new", "Bond", "wk2@example.com", "wk2"]],
    )
    ui.upload(second)
    ui.wait_for_mapping()
    expect(page.locator("#suggested-from")).to_have_text(
        "Mapped as in Weekly agents: check the choices, then import."
    )
    expect(page.get_by_label("Username", exact=True)).to_have_value("col:Login")
    expect(page.get_by_label("Email", exact=True)).to_have_value("col:Mail")
    expect(page.get_by_label("Virtual Extension", exact=True)).to_have_value("col:Ext")
    expect(page.get_by_label("Last name")).to_have_value("col:Surname")
    expect(page.get_by_label("Role from Dialer").locator("option:checked")).to_contain_text("Supervisor")
    expect(page.get_by_label("Desk from Dialer").locator("option:checked")).to_contain_text("Support")
    expect(page.get_by_label("Email - with one-time code")).to_be_checked()
    ui.screenshot("9-mapped-as-saved")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    expect_counts(page, created=1, duplicates=0, errors=0)
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "wk2"))
        assert (user.extension, user.last_name, user.role.name, user.desk.name, user.auth_type) == (
            "4002", "Bond", "Supervisor", "Support", "email_otp",
        )  # fmt: skip


def test_a_saved_mapping_naming_a_deleted_role_says_so_and_leaves_the_role_unmapped(
    page, ui, imports, sessions, tmp_path
):
    from playwright.sync_api import expect

    with sessions.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        temp = Role(tenant_id=tenant.id, name="Seasonal staff", permissions=[])
        session.add(temp)
        session.flush()
        temp_id = temp.id
        desk_id = session.scalar(select(Desk.id).where(Desk.name == "Sales"))
    mapping = {"username": {"column": "Login"}, "email": {"column": "Mail"}, "extension": {"generate": True},
               "role": {"value": temp_id}, "desk": {"value": desk_id}}  # fmt: skip
    saved = imports.client.post(
        "/api/v1/mappings", headers=imports.auth, json={"name": "Summer", "mapping": mapping}
    )
    assert saved.status_code == 201, saved.get_json()
    with sessions.begin() as session:
        session.delete(session.get(Role, temp_id))

    ui.login()
    ui.upload(write_csv(tmp_path / "summer.csv", [["Mail", "Login"], ["s1@example.com", "s1"]]))
    ui.wait_for_mapping()
    expect(page.locator("#suggested-from")).to_contain_text("Mapped as in Summer")
    expect(page.locator('[data-error-for="role"]')).to_have_text(
        f'Role {temp_id} of the saved mapping "Summer" no longer exists; choose again.'
    )
    expect(page.get_by_label("Role from Dialer")).to_have_value("")
    expect(page.get_by_label("Role from Dialer")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Desk from Dialer").locator("option:checked")).to_contain_text("Sales")
    ui.screenshot("9-saved-mapping-deleted-role")

    page.get_by_role("button", name="Delete Summer").click()
    expect(page.locator("#save-status")).to_have_text("Deleted the saved mapping “Summer”.")
    expect(page.locator("#saved-empty")).to_be_visible()


def test_an_import_past_retention_says_in_words_what_went_and_what_stays(
    page, ui, live_worker, sessions, browser_settings, tmp_path
):
    from playwright.sync_api import expect

    from worker.tasks import run_purge

    ui.login()
    rows = [["Username", "Email"], *[r[:2] for r in people("old", 3)], ["bad", "not-an-email"]]
    import_file(ui, page, write_csv(tmp_path / "old.csv", rows))
    expect_counts(page, created=3, duplicates=0, errors=1)
    job_id = import_id_of(page)
    expect(page.get_by_role("region", name="Fix failed rows")).to_be_visible()
    expect(page.locator("#data-expired")).to_be_hidden()
    with sessions.begin() as session:
        job = session.get(ImportJob, job_id)
        job.finished_at = job.finished_at - timedelta(days=browser_settings.row_data_retention_days + 1)
    run_purge(sessions, browser_settings, redis=Redis.from_url(browser_settings.redis_url))

    page.reload()
    note = page.locator("#data-expired")
    expect(note).to_be_visible()
    expect(note).to_contain_text("were deleted")
    expect(note).to_contain_text("the users it created stay")
    expect_counts(page, created=3, duplicates=0, errors=1)
    expect(page.get_by_role("link", name="Download Error Details")).to_be_hidden()
    expect(page.get_by_role("region", name="Fix failed rows")).to_be_hidden()
    expect(page.get_by_role("button", name="Regenerate passwords")).to_be_hidden()
    ui.screenshot("9-row-data-expired")
