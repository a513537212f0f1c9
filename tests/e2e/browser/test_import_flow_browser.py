"""The whole import in the browser, as the help page walks through it: upload, map, import, result."""

from __future__ import annotations

import csv
import re
from urllib.parse import urlsplit

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from shared.accounts.passwords import verify_password
from shared.imports import stream_leases
from shared.models import Desk, ImportJob, Role, SkillGroup, User
from tests.support.browser import (
    cell,
    download,
    expect_complete,
    expect_counts,
    import_id_of,
    people,
    read_csv,
    write_csv,
)
from tests.support.builders import basic_mapping
from tests.support.workers import PausedWorker

pytestmark = pytest.mark.browser

SUCCESS_HEADER = ["Row", "Username", "Email", "Virtual Extension", "Temporary Password"]


def test_csv_import_from_upload_to_users_table(page, ui, live_worker, sessions, settings, tmp_path):
    from playwright.sync_api import expect

    rows = [["Username", "Email", "First name", "Last name"], *people("csvuser", 6)]
    rows.insert(3, ["admin", "someone@example.com", "Dup", "Licate"])  # the admin exists: a duplicate
    rows.insert(5, ["bad user!", "not-an-email", "Err", "Or"])  # two problems in one row
    path = write_csv(tmp_path / "agents.csv", rows)

    ui.login()
    page.get_by_role("link", name="Create from file").click()
    expect(page.get_by_role("heading", name="Create from file")).to_be_visible()
    expect(page.get_by_role("link", name="Download CSV template")).to_have_attribute(
        "href", "/api/v1/imports/template.csv"
    )
    page.get_by_label("Drag and drop a file or browse for it").set_input_files(str(path))
    expect(page.locator("#chosen-file")).to_contain_text("agents.csv")
    ui.screenshot("1-upload")
    page.get_by_role("button", name="Upload").click()

    ui.wait_for_mapping()
    expect(page.locator("#file-heading")).to_contain_text("agents.csv")
    expect(page.locator("#row-count")).to_have_text("8")
    expect(page.locator("#preview thead th")).to_have_text(["Username", "Email", "First name", "Last name"])
    expect(page.locator("#preview tbody tr").first).to_contain_text("csvuser1@example.com")
    # The suggested mapping is filled in: columns by name, extensions generated.
    expect(page.get_by_label("Username", exact=True)).to_have_value("col:Username")
    expect(page.get_by_label("Email", exact=True)).to_have_value("col:Email")
    expect(page.get_by_label("First name")).to_have_value("col:First name")
    expect(page.get_by_label("Generate the next available virtual extensions")).to_be_checked()
    expect(page.get_by_label("Virtual Extension", exact=True)).to_be_disabled()
    expect(page.get_by_label("Use WebRTC")).to_be_checked()
    expect(page.get_by_label("Default from Role/Tenant")).to_be_checked()
    ui.choose_role_from_dialer("Agent")
    ui.screenshot("2-mapping")
    page.get_by_role("button", name="Import Users").click()

    expect_complete(page, 8)
    ui.wait_for_result()
    expect_counts(page, created=6, duplicates=1, errors=1)
    expect(page.get_by_text("cannot be shown again after you click Continue")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    ui.screenshot("4-result")

    success = read_csv(download(page, "Download Success Details"))
    assert list(success[0])[:5] == SUCCESS_HEADER
    assert [r["Username"] for r in success] == [f"csvuser{i}" for i in range(1, 7)]
    assert [r["Row"] for r in success] == ["2", "3", "5", "7", "8", "9"]
    assert [r["Virtual Extension"] for r in success] == [
        str(1000 + i) for i in range(6)
    ]  # lowest free, in order
    errors = read_csv(download(page, "Download Error Details"))
    assert [r["Username"] for r in errors] == ["admin", "bad user!"]
    assert [r["Row"] for r in errors] == ["4", "6"]
    assert all(r["Errors"] for r in errors)
    assert list(errors[0]) == ["Username", "Email", "First name", "Last name", "Row", "Errors"]
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "csvuser3"))
        assert verify_password(settings, user.password_hash, cell(success[2]["Temporary Password"]))
        assert user.role.name == "Agent" and user.first_name == "Ann" and user.last_name == "Smith3"
        # The page sent the mapping exactly in the shape of API.md.
        assert session.scalar(select(ImportJob.mapping)) == {
            "username": {"column": "Username"},
            "email": {"column": "Email"},
            "first_name": {"column": "First name"},
            "last_name": {"column": "Last name"},
            "extension": {"generate": True},
            "role": {"value": user.role_id},
            "sip": {"mode": "webrtc"},
            "auth_type": "default",
            "security": None,
            "digits_only_passwords": False,
            "credentials": "temporary_password",  # the mapping page's default
        }

    job_id = import_id_of(page)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(rf"/users\?import_id={job_id}$"))
    expect(page.locator("#import-filter")).to_contain_text(f"Showing users of import {job_id}")
    table = page.locator("#users-table tbody tr")
    expect(table).to_have_count(6)
    for i in range(1, 7):
        expect(page.locator("#users-table")).to_contain_text(f"csvuser{i}@example.com")
    ui.screenshot("5-users-of-import")
    page.get_by_role("link", name="show all").click()
    expect(page.locator("#users-count")).to_have_text("7 users")

    # The passwords are gone after Continue; the import stays listed under Imports.
    page.goto(f"/imports/{job_id}")
    ui.wait_for_result()
    expect(page.get_by_role("link", name="Download Success Details")).to_be_hidden()
    expect(page.locator("#passwords-gone")).to_be_visible()
    page.goto("/users?tab=imports")
    listed = page.locator("#imports-table tbody tr").first
    expect(listed).to_contain_text("agents.csv")
    expect(listed).to_contain_text("succeeded")
    expect(listed).to_contain_text("6 created, 1 duplicate, 1 error of 8")
    expect(listed).to_contain_text("admin")
    ui.screenshot("users-management-imports-tab")
    listed.get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"/imports/{job_id}$"))


def test_xlsx_import_with_columns_for_extension_role_and_desk(page, ui, live_worker, sessions, tmp_path):
    from playwright.sync_api import expect

    with sessions() as session:
        supervisor = session.scalar(select(Role).where(Role.name == "Supervisor")).id
        support = session.scalar(select(Desk).where(Desk.name == "Support")).id
        groups = sorted(session.scalars(select(SkillGroup.id).where(SkillGroup.name.in_(["English", "VIP"]))))
    book = Workbook()
    sheet = book.active
    sheet.append(["Username", "E-mail", "Ext", "Role ID", "Desk", "First Name"])
    for i in range(1, 6):
        sheet.append([f"xl{i}", f"xl{i}@example.com", 3000 + i, supervisor, support, f"Xavier{i}"])
    path = tmp_path / "people.xlsx"
    book.save(path)

    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    expect(page.locator("#row-count")).to_have_text("5")
    expect(page.get_by_label("Email", exact=True)).to_have_value("col:E-mail")
    expect(page.get_by_label("Virtual Extension", exact=True)).to_have_value("col:Ext")
    expect(page.get_by_label("Generate the next available virtual extensions")).not_to_be_checked()
    expect(page.get_by_label("Role", exact=True)).to_have_value("col:Role ID")
    expect(page.get_by_label("Role from Dialer")).to_be_hidden()
    expect(page.get_by_label("Desk", exact=True)).to_have_value("col:Desk")
    page.get_by_label("Skill Groups", exact=True).select_option(label="From Dialer")
    page.get_by_label("Skill Groups from Dialer").select_option([str(g) for g in groups])
    page.get_by_role("button", name="Import Users").click()

    ui.wait_for_result()
    expect_complete(page, 5)
    expect_counts(page, created=5, duplicates=0, errors=0)
    expect(page.get_by_role("link", name="Download Error Details")).to_be_hidden()
    success = read_csv(download(page, "Download Success Details"))
    assert [(r["Username"], r["Virtual Extension"]) for r in success] == [
        (f"xl{i}", str(3000 + i)) for i in range(1, 6)
    ]
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(5)
    row = page.locator("#users-table tbody tr", has_text="xl2@example.com")
    expect(row).to_contain_text("3002")
    expect(row).to_contain_text("Supervisor")
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "xl2"))
        assert user.desk_id == support and user.first_name == "Xavier2"
        assert sorted(g.id for g in user.skill_groups) == groups


def test_fixing_the_error_file_and_uploading_it_again_creates_the_rest(
    page, ui, live_worker, sessions, tmp_path
):
    from playwright.sync_api import expect

    rows = [["Username", "Email", "First name", "Last name"], *people("fix", 8)]
    rows[2][1] = "fix2-at-example.com"  # bad email
    rows[5][0] = "x"  # username too short
    rows[7][1] = ""  # missing email
    path = write_csv(tmp_path / "team.csv", rows)

    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    expect_counts(page, created=5, duplicates=0, errors=3)
    error_file = download(page, "Download Error Details")
    errors = read_csv(error_file)
    assert [r["Row"] for r in errors] == ["3", "6", "8"]
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(5)

    # Fix the bad cells, keep the Row and Errors columns, and upload the file as it is.
    fixed = tmp_path / "team-errors-fixed.csv"
    with fixed.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(errors[0]))
        writer.writeheader()
        for row in errors:
            row["Username"] = "fix5" if row["Username"] == "x" else row["Username"]
            row["Email"] = f"{row['Username']}@example.com"
            writer.writerow(row)
    ui.upload(fixed)
    ui.wait_for_mapping()
    expect(page.locator("#row-count")).to_have_text("3")
    expect(page.locator("#preview thead th")).to_have_text(
        ["Username", "Email", "First name", "Last name", "Row", "Errors"]
    )
    ui.choose_role_from_dialer("Agent")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    expect_complete(page, 3)
    expect_counts(page, created=3, duplicates=0, errors=0)
    second = import_id_of(page)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(3)
    with sessions() as session:
        names = set(session.scalars(select(User.username).where(User.import_id == second)))
        assert names == {"fix2", "fix5", "fix7"}
        assert session.scalar(select(func.count()).select_from(User).where(User.username.like("fix%"))) == 8


def test_validate_only_creates_nothing_and_shows_what_would_happen(page, ui, live_worker, sessions, tmp_path):
    from playwright.sync_api import expect

    rows = [
        ["Username", "Email"],
        ["val1", "val1@example.com"],
        ["val2", "nope"],
        ["val3", "val3@example.com"],
    ]
    path = write_csv(tmp_path / "check.csv", rows)
    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    mapping_url = page.url
    ui.choose_role_from_dialer("Supervisor")
    page.get_by_role("button", name="Validate only").click()
    ui.wait_for_result()
    expect(page.get_by_text("Validation only: nothing was created")).to_be_visible()
    expect_counts(page, created=2, duplicates=0, errors=1)
    expect(page.locator("#result")).to_contain_text("users would be created")
    expect(page.get_by_role("link", name="Download Success Details")).to_be_hidden()
    errors = read_csv(download(page, "Download Error Details"))
    assert [r["Username"] for r in errors] == ["val2"]
    ui.screenshot("4-result-validation-only")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.username.like("val%"))) == 0
        assert session.scalar(select(ImportJob.dry_run)) is True
    # Continue goes back to the mapping, with the choices as they were.
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(mapping_url)
    expect(page.get_by_label("Role from Dialer")).to_have_value(re.compile(r"^\d+$"))
    expect(page.get_by_label("Role from Dialer").locator("option:checked")).to_contain_text("Supervisor")


class HeldScript:
    """Holds one static script's response until released: the page as a slow connection shows it."""

    def __init__(self, page, name: str) -> None:
        self.page, self.pattern, self.routes = page, f"**/static/{name}", []
        page.route(self.pattern, lambda route: self.routes.append(route))

    def release(self) -> None:
        """Serve the script once the page has asked for it."""
        while not self.routes:
            self.page.wait_for_timeout(20)  # lets Playwright deliver the request to the handler
        for route in self.routes:
            route.continue_()
        self.page.unroute(self.pattern)


def test_buttons_wait_for_their_scripts_on_a_slow_connection(page, ui, live_worker, tmp_path):
    from playwright.sync_api import expect

    api_posts = []
    page.on("request", lambda r: api_posts.append(r) if r.method == "POST" and "/api/v1/" in r.url else None)
    path = write_csv(tmp_path / "slow.csv", [["Username", "Email"], *[r[:2] for r in people("slow", 3)]])
    ui.login()
    upload_js, mapping_js = HeldScript(page, "upload.js"), HeldScript(page, "mapping.js")
    page.goto("/imports/new", wait_until="commit")  # "load" would wait for the held script
    upload = page.get_by_role("button", name="Upload")
    expect(upload).to_be_disabled()
    page.get_by_label("Drag and drop a file or browse for it").set_input_files(str(path))
    upload.click(force=True)  # an impatient click before the script is there does nothing
    upload_js.release()
    upload.click()  # enabled by the script: Playwright waits for it
    expect(page).to_have_url(re.compile(r"/imports/new/[0-9a-f]+$"))
    for name in ("Validate only", "Import Users"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    page.get_by_role("button", name="Import Users").click(force=True)
    mapping_js.release()
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    expect_counts(page, created=3, duplicates=0, errors=0)
    # Only the scripts posted, each with the CSRF header: one upload, one import.
    assert [urlsplit(r.url).path for r in api_posts] == ["/api/v1/uploads", "/api/v1/imports"]
    assert all(r.headers.get("x-csrftoken") for r in api_posts)


def test_progress_falls_back_to_polling_and_survives_a_reload(page, ui, live_worker, tmp_path):
    from playwright.sync_api import expect

    page.add_init_script("delete window.EventSource;")
    path = write_csv(tmp_path / "poll.csv", [["Username", "Email"], *[r[:2] for r in people("poll", 5)]])
    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    page.get_by_role("button", name="Import Users").click()
    ui.wait_for_result()
    expect_complete(page, 5)
    expect_counts(page, created=5, duplicates=0, errors=0)
    page.reload()
    ui.wait_for_result()
    expect_counts(page, created=5, duplicates=0, errors=0)
    expect(page.get_by_role("link", name="Download Success Details")).to_be_visible()


def test_a_mapping_the_api_refuses_shows_each_problem_beside_its_field(page, ui, tmp_path):
    from playwright.sync_api import expect

    path = write_csv(
        tmp_path / "pbx.csv", [["Username", "Email", "Ext"], ["pbx1", "pbx1@example.com", "1201"]]
    )
    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    # Role left unchosen, classic PBX without a domain, a bad network in the security settings.
    page.get_by_label("Use CommPeak classic PBX").check()
    expect(page.get_by_label("PBX domain")).to_be_visible()
    page.get_by_label("PBX device (extension) column").select_option("col:Ext")
    # The switch works from the keyboard; each security field explains itself in a tooltip.
    page.get_by_role("switch", name="Advanced security settings").focus()
    page.keyboard.press("Space")
    networks = page.get_by_label("Allowed IP networks")
    expect(networks).to_be_visible()
    assert networks.get_attribute("aria-describedby") == "tip-networks"
    tip = page.locator("#tip-networks")
    expect(tip).to_be_hidden()
    page.locator('.tip[aria-describedby="tip-networks"]').focus()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("CIDR")
    for field in (
        "Session timeout (minutes)",
        "Lock after N failed logins",
        "Force password change at first login",
    ):
        described = page.get_by_label(field).get_attribute("aria-describedby")
        expect(page.locator(f"#{described}")).not_to_be_empty()
        assert page.locator(f'.tip[aria-describedby="{described}"]').get_attribute("title")
    expect(page.get_by_label("Force password change at first login")).to_be_checked()
    networks.fill("10.0.0.0/8, not-a-network")
    page.get_by_role("button", name="Import Users").click()

    summary = page.locator("#summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("The mapping has 3 problems")
    expect(page.locator('[data-error-for="role"]')).to_contain_text("Role must be mapped")
    expect(page.locator('[data-error-for="sip.domain_id"]')).to_contain_text("PBX domain")
    expect(page.locator('[data-error-for="security.allowed_networks"]')).to_contain_text("not-a-network")
    expect(page.get_by_label("PBX domain")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/imports/new/[0-9a-f]+$"))
    ui.screenshot("2-mapping-refused")

    # Fixed, it goes through.
    ui.choose_role_from_dialer("Agent")
    page.get_by_label("PBX domain").select_option(index=1)
    networks.fill("10.0.0.0/8")
    page.get_by_role("button", name="Validate only").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f]+$"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("users.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, None),
        (
            "many.csv",
            ("Username,Email\n" + "".join(f"u{i},u{i}@example.com\n" for i in range(501))).encode(),
            "500",
        ),
    ],
    ids=["png-named-csv", "501-rows"],
)
def test_a_refused_file_shows_its_error_beside_the_drop_zone(page, ui, tmp_path, name, content, message):
    from playwright.sync_api import expect

    path = tmp_path / name
    path.write_bytes(content)
    ui.login()
    ui.upload(path)
    alert = page.locator("#upload-error")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).not_to_be_empty()
    if message:
        expect(alert).to_contain_text(message)
    expect(page).to_have_url(re.compile(r"/imports/new$"))
    ui.screenshot(f"1-upload-refused-{name.split('.')[0]}")


def test_upload_without_a_file_asks_for_one(page, ui):
    from playwright.sync_api import expect

    ui.login()
    page.goto("/imports/new")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("Choose a CSV or XLSX file first")


RECORD_PROGRESS = """
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("progress");
  if (!bar) return;
  window.__seen = [bar.getAttribute("aria-valuenow")];
  new MutationObserver(() => window.__seen.push(bar.getAttribute("aria-valuenow")))
    .observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
});
"""


def test_a_refused_stream_falls_back_to_polling_without_alarm(
    page, ui, live_worker, sessions, settings, tmp_path
):
    """The admin already holds STREAMS_PER_USER streams (other tabs): the page's stream gets 429.

    The worker is paused until the page has been refused, so the import is still running then: a
    settled import would answer its one event without taking a place."""
    from playwright.sync_api import expect
    from redis import Redis

    with sessions() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        client = Redis.from_url(settings.redis_url)
        for _ in range(settings.streams_per_user):
            stream_leases.acquire(client, admin.tenant_id, str(admin.id), settings.streams_per_user, 10**6)
    path = write_csv(tmp_path / "full.csv", [["Username", "Email"], *[r[:2] for r in people("full", 5)]])
    ui.login()
    ui.upload(path)
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    paused = PausedWorker(settings)
    try:
        with page.expect_response(lambda r: r.url.endswith("/events")) as stream:
            page.get_by_role("button", name="Import Users").click()
        assert stream.value.status == 429
    finally:
        paused.resume()
    ui.wait_for_result()  # by polling the status
    expect_complete(page, 5)
    expect_counts(page, created=5, duplicates=0, errors=0)
    expect(page.locator("#action-error")).to_be_hidden()


def test_progress_bar_moves_live_to_100(page, ui, live_worker, tmp_path):
    from playwright.sync_api import expect

    page.add_init_script(RECORD_PROGRESS)
    rows = [["Username", "Email"], *[[f"bulk{i}", f"bulk{i}@example.com"] for i in range(150)]]
    ui.login()
    ui.upload(write_csv(tmp_path / "bulk.csv", rows))
    ui.wait_for_mapping()
    ui.choose_role_from_dialer("Agent")
    page.get_by_role("button", name="Import Users").click()
    expect(page).to_have_url(re.compile(r"/imports/[0-9a-f]+$"))
    ui.screenshot("3-progress")
    ui.wait_for_result()
    expect_complete(page, 150)
    seen = [int(v) for v in page.evaluate("window.__seen")]
    # Only the end: that progress never steps back is test_scheduling.py's to check, where it is made so.
    assert seen[-1] == 100, seen
    print("progress values seen:", seen)


def test_a_file_dropped_on_the_drop_zone_is_uploaded(page, ui):
    from playwright.sync_api import expect

    ui.login()
    page.goto("/imports/new")
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["Username,Email\\ndrop1,drop1@example.com\\n"], "dropped.csv",
                                    { type: "text/csv" }));
            return data;
        }"""
    )
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": dropped})
    expect(page.locator("#dropzone")).to_have_class(re.compile(r"\bdragover\b"))
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    expect(page.locator("#chosen-file")).to_contain_text("dropped.csv")
    page.get_by_role("button", name="Upload").click()
    ui.wait_for_mapping()
    expect(page.locator("#file-heading")).to_contain_text("dropped.csv")
    expect(page.locator("#row-count")).to_have_text("1")


def _finished_job(sessions, status: str, error: str | None = None) -> str:
    from shared.models import Tenant, Upload

    with sessions.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        upload = Upload(tenant_id=tenant.id, filename="broken.csv", format="csv", size=3, content=b"a,b",
                        headers=["a", "b"], row_count=4)  # fmt: skip
        session.add(upload)
        session.flush()
        job = ImportJob(
            tenant_id=tenant.id, upload_id=upload.id, status=status, error=error, total=4, mapping={}
        )
        session.add(job)
        session.flush()
        return job.id


def test_a_failed_import_says_why(page, ui, sessions):
    from playwright.sync_api import expect

    job_id = _finished_job(sessions, "failed", "The file could not be read: row 3 is cut short.")
    ui.login()
    page.goto(f"/imports/{job_id}")
    alert = page.locator("#job-error")
    expect(alert).to_have_text("The file could not be read: row 3 is cut short.")
    expect(alert).to_have_attribute("role", "alert")
    expect(page.locator("#status-text")).to_have_text("The import failed.")
    expect(page.get_by_role("heading", name="Upload Result")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    ui.screenshot("4-result-failed")


def test_a_job_failing_in_its_second_chunk_still_hands_over_the_first_chunks_passwords(
    page, ui, hooked_world, sessions, tmp_path
):
    from playwright.sync_api import expect

    world = hooked_world({"HOOK_FAIL_CHUNK": "1"}, chunk_size=3)  # rows 2-4 commit, rows 5-6 fail
    rows = [["Username", "Email"], *[r[:2] for r in people("half", 5)]]
    final = world.imports.run(write_csv(tmp_path / "half.csv", rows).read_bytes(),
                              basic_mapping(world.imports.reference("roles")["Agent"]))  # fmt: skip
    assert (final["status"], final["created"]) == ("failed", 3), final
    assert final["error"]

    ui.login()
    page.goto(f"/imports/{final['id']}")
    ui.wait_for_result()
    expect(page.locator("#status-text")).to_have_text("The import failed.")
    expect(page.locator("#job-error")).to_have_text(final["error"])
    expect(page.locator("#failed-note")).to_be_visible()
    expect_counts(page, created=3, duplicates=0, errors=0)
    expect(page.get_by_text("cannot be shown again after you click Continue")).to_be_visible()
    ui.screenshot("4-result-failed-part-way")
    success = read_csv(download(page, "Download Success Details"))
    assert [(r["Row"], r["Username"]) for r in success] == [("2", "half1"), ("3", "half2"), ("4", "half3")]
    with sessions() as session:
        hashes = dict(session.execute(select(User.username, User.password_hash)).all())
    for line in success:
        assert verify_password(world.settings, hashes[line["Username"]], cell(line["Temporary Password"]))
    errors = read_csv(download(page, "Download Error Details"))
    assert [r["Row"] for r in errors] == ["5", "6"]
    assert all(r["Errors"].startswith("Not created") for r in errors)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#users-table tbody tr")).to_have_count(3)


def test_a_cancelled_import_says_so(page, ui, sessions):
    from playwright.sync_api import expect

    job_id = _finished_job(sessions, "cancelled")
    ui.login()
    page.goto(f"/imports/{job_id}")
    ui.wait_for_result()
    expect(page.locator("#cancelled-note")).to_contain_text("This import was cancelled")
    expect_counts(page, created=0, duplicates=0, errors=0)
