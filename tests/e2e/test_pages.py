"""The pages over HTTP (Flask test client): login, CSRF, logout, redirects, non-admins refused."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from shared.accounts.passwords import hash_password
from shared.models import ImportJob, Role, Tenant, User
from tests.support.accounts import ADMIN_PASSWORD
from web.pages.users import TABS

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
    assert client.get("/users").status_code == 200


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


def test_unknown_upload_and_import_pages_answer_404(client):
    log_in(client)
    for path in ("/imports/new/nope", "/imports/nope"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert b"was not found" in resp.data


def test_upload_page_links_to_templates_that_download(client):
    log_in(client)
    page = client.get("/imports/new").get_data(as_text=True)
    links = re.findall(r'href="(/api/v1/imports/template\.(?:csv|xlsx))"', page)
    assert sorted(links) == ["/api/v1/imports/template.csv", "/api/v1/imports/template.xlsx"]
    for link in links:
        resp = client.get(link)
        assert resp.status_code == 200 and resp.data, link


class Controls(HTMLParser):
    """The forms of a page, and each button with the form it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.buttons: list[tuple[dict[str, str | None], dict[str, str | None] | None]] = []
        self._form: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._form = found
            self.forms.append(found)
        elif tag == "input" and self._form is not None and found.get("name") == "csrf_token":
            self._form["csrf_token"] = found.get("value")
        elif tag == "button":
            self.buttons.append((found, self._form))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _page_controls(client, path: str) -> Controls:
    resp = client.get(path)
    assert resp.status_code == 200, path
    controls = Controls()
    controls.feed(resp.get_data(as_text=True))
    return controls


def _every_page(client, session) -> list[str]:
    """Every page an admin sees, with a real upload and import behind the import pages."""
    upload = client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(b"Username,Email\nform1,form1@example.com\n"), "forms.csv")},
        headers={"X-CSRFToken": csrf_token(client, "/users")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 201, upload.get_json()
    upload_id = upload.get_json()["upload_id"]
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    job = ImportJob(tenant_id=tenant.id, upload_id=upload_id, status="succeeded", total=1, mapping={})
    session.add(job)
    session.commit()
    tabs = [f"/users?tab={tab}" for tab, _label in TABS]
    return [*tabs, "/imports/new", f"/imports/new/{upload_id}", f"/imports/{job.id}"]


def test_no_control_can_act_before_its_script_or_without_a_csrf_token(client, session, app):
    """Native forms post to real routes with a token the server takes; the rest wait for their script."""
    log_in(client)
    routes = app.url_map.bind("localhost")
    native_posts: dict[str, str | None] = {}
    for path in _every_page(client, session):
        controls = _page_controls(client, path)
        for form in controls.forms:
            method = (form.get("method") or "").lower()
            action = form.get("action") or path.split("?")[0]
            if method in ("get", "post"):
                routes.match(action, method=method.upper())  # NotFound or MethodNotAllowed otherwise
                if method == "post":
                    native_posts[action] = form.get("csrf_token")
            else:
                assert method in ("", "dialog") and not form.get("action"), (path, form)
        for button, form in controls.buttons:
            # A button only a script gives meaning to ships disabled, so an early click does nothing.
            native = form is not None and (form.get("method") or "").lower() in ("get", "post", "dialog")
            if not native or button.get("type") == "button":
                assert "disabled" in button, (path, button)
    assert "/logout" in native_posts
    for action, token in sorted(native_posts.items(), key=lambda item: item[0] == "/logout"):  # logout last
        assert token, f"the form posting to {action} carries no CSRF token"
        resp = client.post(action, data={"csrf_token": token})
        assert resp.status_code != 400 or b"csrf_failed" not in resp.data, action
    assert client.get("/users").status_code == 302  # the logout form's token was taken: logged out
    login = _page_controls(client, "/login")
    assert [f.get("method") for f in login.forms] == ["post"]
    data = {"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    resp = client.post("/login", data=data | {"csrf_token": login.forms[0]["csrf_token"]})
    assert resp.status_code == 302 and resp.headers["Location"] == "/users"
