"""Browser fixtures: a live server on a free port, the system Chromium, and action helpers.

The browser flow runs once, on SQLite, against a real worker and Redis (tests/conftest.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from shared.settings import PROJECT_ROOT, Settings
from tests.conftest import ADMIN_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 20_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives the browser."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """The suite's settings, on SQLite only (the API tests cover both databases)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("browser flow runs once, on SQLite")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install the system Chromium (apt-get install -y chromium)")
    return request.getfixturevalue("base_settings")


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest, browser_settings: Settings) -> Iterator[str]:
    """The web app served on a free local port; the pages' API answers are checked against the contract."""
    from tests.support.contract import check_answers
    from web import create_app

    app = create_app(browser_settings)
    violations = check_answers(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    assert not violations, "answers the pages got that break the contract:\n" + "\n".join(violations)


@pytest.fixture(scope="session")
def live_worker(request: pytest.FixtureRequest, browser_settings: Settings) -> object:
    """The suite's real Celery worker, started only once the browser tests are known to run."""
    return request.getfixturevalue("worker")


@pytest.fixture
def live_url(request: pytest.FixtureRequest, live_server: str) -> str:
    """The live server's URL, over a freshly seeded database."""
    request.getfixturevalue("clean_db")
    return live_server


@pytest.fixture(scope="session")
def browser(browser_settings: Settings) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Requests:
    """Every URL the page asked for, to prove nothing leaves the service."""

    origin: str
    urls: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        own = urlsplit(self.origin).netloc
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != own
        ]


@pytest.fixture
def requests_seen(live_url: str) -> Requests:
    return Requests(live_url)


@pytest.fixture
def page(browser, live_url: str, requests_seen: Requests) -> Iterator:
    """A fresh browser context on the live server; fails if any request goes to another host."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(
        base_url=live_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("request", lambda req: requests_seen.urls.append(req.url))
    yield page
    context.close()
    assert requests_seen.urls, "the page made no request at all"
    assert requests_seen.foreign() == [], f"requests to other hosts: {requests_seen.foreign()}"


class Ui:
    """Actions an admin takes in the browser (flaskr-style helpers)."""

    def __init__(self, page) -> None:
        self.page = page

    def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as a test artifact."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD, workspace: str = "demo") -> None:
        from playwright.sync_api import expect

        self.page.goto("/login")
        self.page.get_by_label("Workspace").fill(workspace)
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_role("heading", name="Users Management")).to_be_visible()

    def open_tab(self, name: str) -> None:
        tabs = self.page.get_by_role("navigation", name="Users Management tabs")
        tabs.get_by_role("link", name=name).click()

    def upload(self, path: Path) -> None:
        """From Users Management: Create from file, choose the file, Upload."""
        from playwright.sync_api import expect

        self.page.goto("/users")
        self.page.get_by_role("link", name="Create from file").click()
        expect(self.page.get_by_role("heading", name="Create from file")).to_be_visible()
        self.page.get_by_label("Drag and drop a file or browse for it").set_input_files(str(path))
        self.page.get_by_role("button", name="Upload").click()

    def wait_for_mapping(self) -> None:
        from playwright.sync_api import expect

        expect(self.page).to_have_url(re.compile(r"/imports/new/[0-9a-f]+$"))
        expect(self.page.locator("#preview tbody tr").first).to_be_visible()

    def choose_role_from_dialer(self, role: str = "Agent") -> None:
        self.page.get_by_label("Role", exact=True).select_option(label="From Dialer")
        roles = self.page.get_by_label("Role from Dialer")
        option = roles.locator("option", has_text=re.compile(rf"^{re.escape(role)} \(ID \d+\)$"))
        roles.select_option(label=option.text_content())

    def wait_for_result(self) -> None:
        from playwright.sync_api import expect

        expect(self.page).to_have_url(re.compile(r"/imports/[0-9a-f]+$"))
        expect(self.page.get_by_role("heading", name="Upload Result")).to_be_visible()


@pytest.fixture
def ui(page) -> Ui:
    return Ui(page)
