"""The pages over HTTP (Flask test client): login, CSRF, logout, redirects, non-admins refused."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from shared.models import Role, Tenant, User
from shared.passwords import hash_password
from tests.conftest import ADMIN_PASSWORD

PAGES = ["/users", "/users?tab=roles", "/users?tab=imports", "/imports/new", "/imports/new/ab", "/imports/ab"]


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def log_in(client, password: str = ADMIN_PASSWORD, username: str = "admin"):
    data = {"tenant": "demo", "username": username, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login", data=data)


def add_agent(session, settings) -> User:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
    user = User(tenant_id=tenant.id, username="agent1", email="agent1@demo.example", extension="1500",
                role_id=agent.id, password_hash=hash_password(settings, "Agent-Pass-1"))  # fmt: skip
    session.add(user)
    session.commit()
    return user


def test_login_opens_users_management(client):
    resp = log_in(client)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/users"
    page = client.get("/users").get_data(as_text=True)
    assert "<h1>Users Management</h1>" in page
    assert "Create from file" in page
    for tab in ("Users", "Roles", "Desks", "Skill Groups", "PBX domains", "Imports"):
        assert f">{tab}</a>" in page
    assert 'name="csrf-token"' in page


def test_login_returns_to_the_page_asked_for(client):
    resp = client.get("/users?tab=desks")
    assert resp.status_code == 302
    login_url = resp.headers["Location"]
    assert login_url.startswith("/login?next=")
    data = {"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    data["csrf_token"] = csrf_token(client)
    resp = client.post(login_url, data=data)
    assert resp.headers["Location"] == "/users?tab=desks"


def test_login_never_redirects_off_site(client):
    data = {"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    data["csrf_token"] = csrf_token(client)
    resp = client.post("/login?next=//evil.example/x", data=data)
    assert resp.headers["Location"] == "/users"


def test_wrong_password_is_refused(client):
    resp = log_in(client, password="wrong")
    assert resp.status_code == 401
    assert b"Workspace, username or password is wrong" in resp.data
    assert client.get("/users").status_code == 302


def test_login_without_csrf_token_is_refused(client):
    data = {"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    resp = client.post("/login", data=data)
    assert resp.status_code == 400
    assert b"csrf_failed" in resp.data
    json_resp = client.post("/login", data=data, headers={"Accept": "application/json"})
    assert json_resp.status_code == 400
    assert json_resp.get_json()["error"]["code"] == "csrf_failed"
    assert client.get("/users").status_code == 302  # still logged out


def test_logout_without_csrf_token_is_refused(client):
    log_in(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/users").status_code == 200


def test_cookie_api_post_needs_the_csrf_header(client, session, settings):
    agent = add_agent(session, settings)
    log_in(client)
    token = csrf_token(client, "/users")
    url = f"/api/v1/users/{agent.id}/reset-password"
    refused = client.post(url)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    wrong = client.post(url, headers={"X-CSRFToken": "made-up"})
    assert wrong.status_code == 400
    ok = client.post(url, headers={"X-CSRFToken": token})
    assert ok.status_code == 200
    assert len(ok.get_json()["temporary_password"]) >= 10
    # GET needs no token: the pages read the API with the cookie alone.
    assert client.get("/api/v1/roles").status_code == 200


def test_logout_ends_the_session(client):
    log_in(client)
    token = csrf_token(client, "/users")
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login"
    assert client.get("/users").status_code == 302
    assert client.get("/api/v1/roles").status_code == 401


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_login_when_logged_out(client, path):
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")


def test_agent_lands_on_the_account_page_and_no_admin_page(client, session, settings):
    agent = add_agent(session, settings)
    agent.must_change_password = False
    session.commit()
    resp = log_in(client, username="agent1", password="Agent-Pass-1")
    assert resp.headers["Location"] == "/account"
    assert "<h1>My account</h1>" in client.get("/account").get_data(as_text=True)
    assert client.get("/users").headers["Location"] == "/account"
    assert client.get("/api/v1/roles").get_json()["error"]["code"] == "admin_required"


def test_reference_tabs_list_ids_first(client):
    log_in(client)
    page = client.get("/users?tab=roles").get_data(as_text=True)
    assert re.search(r"<thead><tr>\s*<th scope=\"col\">ID</th><th scope=\"col\">Name</th>", page)
    for name in ("Agent", "Supervisor", "Admin"):
        assert f"<td>{name}</td>" in page
    assert "pbx.demo.example" in client.get("/users?tab=pbx-domains").get_data(as_text=True)


def test_users_tab_filters_by_import(client):
    log_in(client)
    page = client.get("/users?import_id=0123abcd").get_data(as_text=True)
    assert "Showing users of import" in page and "0123abcd" in page
    assert ">show all</a>" in page
    assert "No users match." in page


def test_unknown_upload_and_import_pages_answer_404(client):
    log_in(client)
    for path in ("/imports/new/nope", "/imports/nope"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert b"was not found" in resp.data


def test_upload_page_names_the_rules_and_templates(client):
    log_in(client)
    page = client.get("/imports/new").get_data(as_text=True)
    assert "<h1>Create from file</h1>" in page
    assert "Drag and drop a file or" in page and "browse for it" in page
    assert '<input type="file" id="file"' in page and '<label for="file"' in page
    assert ">Upload</button>" in page
    assert 'href="/api/v1/imports/template.csv"' in page and "Download CSV template" in page
    assert 'href="/api/v1/imports/template.xlsx"' in page and "Download XLSX template" in page
    assert "500 users" in page


def test_pages_load_nothing_from_other_hosts(client):
    log_in(client)
    for path in ("/users", "/imports/new", "/login"):
        page = client.get(path).get_data(as_text=True)
        for url in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert not re.match(r"^(https?:)?//", url), f"{path} loads {url}"
