"""The browser tests' helpers: the system Chromium, what an admin does in the pages, files to
upload and download, and what the result page shows."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shared.settings import PROJECT_ROOT
from tests.support.accounts import ADMIN_PASSWORD

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


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def cell(value: str) -> str:
    """A cell as a spreadsheet shows it: the result files guard formula-like cells with an apostrophe."""
    return value[1:] if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@") else value


def people(prefix: str, count: int) -> list[list[str]]:
    return [[f"{prefix}{i}", f"{prefix}{i}@example.com", "Ann", f"Smith{i}"] for i in range(1, count + 1)]


def expect_counts(page, created: int, duplicates: int, errors: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#result-created")).to_have_text(str(created))
    expect(page.locator("#result-duplicates")).to_have_text(str(duplicates))
    expect(page.locator("#result-errors")).to_have_text(str(errors))


def expect_complete(page, total: int) -> None:
    from playwright.sync_api import expect

    bar = page.get_by_label("Rows processed")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_js_property("value", 100)
    expect(page.locator("#percent")).to_have_text("100 %")
    expect(page.locator("#count-processed")).to_have_text(str(total))
    expect(page.locator("#count-total")).to_have_text(str(total))


def download(page, name: str) -> Path:
    with page.expect_download() as info:
        page.get_by_role("link", name=name).click()
    return Path(info.value.path())


def import_id_of(page) -> str:
    return re.search(r"/imports/([0-9a-f]+)$", page.url).group(1)
