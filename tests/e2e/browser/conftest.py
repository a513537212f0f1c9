"""Browser fixtures: a live server on a free port, the system Chromium, and action helpers.

The browser flow runs once, on SQLite, against a real worker and Redis (tests/conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from shared.settings import Settings
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Requests, Ui


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


@pytest.fixture
def ui(page) -> Ui:
    return Ui(page)
