"""Users Management in the browser: tabs with their ID columns, search, pages, Reset password."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.accounts.passwords import hash_password, verify_password
from shared.mapping.fields import FIELDS
from shared.models import Desk, Role, SkillGroup, Tenant, User
from shared.settings import Settings

pytestmark = pytest.mark.browser


def _add_agents(sessions: sessionmaker[Session], settings: Settings, count: int) -> None:
    with sessions.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
        pw_hash = hash_password(settings, "Old-Pass-123")
        for i in range(count):
            name = f"agent{i:02d}"
            session.add(
                User(tenant_id=tenant.id, username=name, email=f"{name}@demo.example", first_name="Ann",
                     last_name=f"Agent{i:02d}", extension=str(2000 + i), role_id=agent.id,
                     password_hash=pw_hash)
            )  # fmt: skip


def test_the_users_table_fits_its_card_in_a_1366_px_window(page, ui, sessions, settings):
    """Every column, down to the actions, is in view without scrolling sideways, long values and all."""
    with sessions.begin() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
        desk = session.scalar(select(Desk).where(Desk.tenant_id == tenant.id))
        user = User(tenant_id=tenant.id, username="christopher.montgomery", first_name="Christopher",
                    email="christopher.montgomery@callcenter-example.com", last_name="Montgomery-Smith",
                    extension="20001", role_id=agent.id, desk_id=desk.id, phone_number="+442079460958",
                    auth_type="google_2fa", locked_at=datetime.now(UTC),
                    password_hash=hash_password(settings, "Old-Pass-123"))  # fmt: skip
        user.skill_groups = list(session.scalars(select(SkillGroup).where(SkillGroup.tenant_id == tenant.id)))
        session.add(user)
    page.set_viewport_size({"width": 1366, "height": 768})
    ui.login()
    table = page.locator("#users-table")
    fit = table.evaluate(
        """t => {
          const wrap = t.closest('.table-wrap'), card = t.closest('.card');
          const last = t.querySelector('tbody td:last-child');
          return {scrolls: wrap.scrollWidth > wrap.clientWidth, table: t.getBoundingClientRect().right,
                  card: card.getBoundingClientRect().right, actions: last.getBoundingClientRect().right,
                  window: document.documentElement.clientWidth};
        }"""
    )
    assert not fit["scrolls"] and fit["table"] <= fit["card"], fit
    assert fit["actions"] <= fit["window"], fit
    row = table.locator(f'tr[data-user-id="{user.id}"]')
    from playwright.sync_api import expect

    expect(row.get_by_role("button", name=f"Unlock {user.username}")).to_be_in_viewport()
    expect(row.get_by_role("button", name=f"Reset password of {user.username}")).to_be_in_viewport()
    ui.screenshot("users-table-1366")


def test_reference_tabs_show_the_id_column_first(page, ui, sessions):
    from playwright.sync_api import expect

    ui.login()
    with sessions() as session:
        desks = session.scalars(select(Desk).order_by(Desk.id)).all()
        groups = session.scalars(select(SkillGroup).order_by(SkillGroup.id)).all()
    ui.open_tab("Desks")
    table = page.locator("#desks-table")
    expect(table.locator("thead th").first).to_have_text("ID")
    expect(table.locator("tbody tr")).to_have_count(len(desks))
    expect(table.locator("tbody tr").first.locator("td").nth(0)).to_have_text(str(desks[0].id))
    expect(table.locator("tbody tr").first.locator("td").nth(1)).to_have_text(desks[0].name)
    ui.open_tab("Skill Groups")
    expect(page.locator("#skill-groups-table tbody tr")).to_have_count(len(groups))
    ui.open_tab("Roles")
    expect(page.locator("#roles-table tbody")).to_contain_text("Supervisor")
    ui.open_tab("PBX domains")
    expect(page.locator("#pbx-domains-table tbody")).to_contain_text("pbx.demo.example")
    expect(page.locator("#pbx-domains-table thead th").first).to_have_text("ID")
    ui.open_tab("Imports")
    expect(page.locator("#imports-table")).to_contain_text("No imports yet")
    ui.screenshot("users-management-imports-empty")


def test_users_table_searches_and_pages(page, ui, sessions, settings):
    from playwright.sync_api import expect

    _add_agents(sessions, settings, 55)
    ui.login()
    expect(page.locator("#users-count")).to_have_text("56 users")  # 55 agents and the admin
    headers = page.locator("#users-table thead th")
    expect(headers).to_have_text(
        ["ID", *(f.label for f in FIELDS), "Authentication", "Authenticator", "Locked", "Created", "Actions"]
    )
    expect(page.locator("#users-table tbody tr")).to_have_count(50)
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    expect(page.locator("#users-table tbody tr")).to_have_count(6)
    page.get_by_label("Search users").fill("agent07")
    page.get_by_label("Search users").press("Enter")
    rows = page.locator("#users-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("agent07@demo.example")
    expect(rows.first.locator("td[data-field=first_name]")).to_have_text("Ann")
    expect(rows.first.locator("td[data-field=last_name]")).to_have_text("Agent07")
    expect(rows.first).to_contain_text("2007")
    expect(rows.first).to_contain_text("Agent")
    ui.screenshot("users-management-users-tab")


def test_reset_password_shows_the_new_password_once(page, ui, sessions, settings):
    from playwright.sync_api import expect

    _add_agents(sessions, settings, 2)
    ui.login()
    page.get_by_label("Search users").fill("agent01")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Reset password of agent01").click()
    dialog = page.get_by_role("dialog", name="Reset password")
    expect(dialog).to_contain_text("Reset the password of agent01?")
    dialog.get_by_role("button", name="Reset password").click()
    secret = dialog.locator("#temporary-password")
    expect(secret).to_have_text(re.compile(r"^\S{10,}$"))
    password = secret.text_content()
    expect(dialog).to_contain_text("shown only this once")
    ui.screenshot("users-reset-password")
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "agent01"))
        assert verify_password(settings, user.password_hash, password)
        assert user.must_change_password
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    # Gone from the page once closed: opening the dialog again does not show it.
    assert password not in page.content()
    page.get_by_role("button", name="Reset password of agent01").click()
    expect(dialog.locator("#temporary-password")).to_have_text("")
    dialog.get_by_role("button", name="Cancel").click()


def test_log_out_ends_the_session(page, ui):
    from playwright.sync_api import expect

    ui.login()
    expect(page.get_by_role("banner")).to_contain_text("admin")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_wrong_password_is_refused_on_the_login_page(page, ui):
    from playwright.sync_api import expect

    page.goto("/users")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Workspace").fill("demo")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Workspace, username or password is wrong")
    ui.screenshot("login-refused")


@pytest.mark.parametrize("path", ["/users", "/users?tab=imports", "/imports/new"])
def test_pages_fit_a_phone_screen(page, ui, path):
    from playwright.sync_api import expect

    ui.login()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path)
    expect(
        page.get_by_role("link", name="Create from file")
        .or_(page.get_by_role("heading", name="Create from file"))
        .first
    ).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    ui.screenshot("phone" + path.replace("/", "-").replace("?", "-").replace("=", "-"))
