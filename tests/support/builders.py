"""Test files a tenant admin would bring, with the outcome each row must have."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select

from shared.files.uploads import store_upload
from shared.imports.jobs import create_job
from shared.mapping.templates import TEMPLATE_HEADERS
from shared.models import Tenant, User

HEADERS = TEMPLATE_HEADERS  # the files users fill in start from our template
EXISTING = [
    ("existing0", "existing0@example.com", "9000"),
    ("existing1", "existing1@example.com", "9001"),
    ("existing2", "existing2@example.com", "9002"),
]
MAPPING_CUSTOM_URI = {
    "username": {"column": "Username"},
    "email": {"column": "Email"},
    "extension": {"column": "Virtual Extension"},
    "role": {"column": "Role ID"},
    "first_name": {"column": "First Name"},
    "last_name": {"column": "Last Name"},
    "desk": {"column": "Desk ID"},
    "skill_groups": {"column": "Skill Groups"},
    "sip": {"mode": "custom_uri", "uri": {"column": "SIP URI"}},
}


def basic_mapping(role_id: int) -> dict:
    """Username and Email columns, generated extensions, one role for all."""
    return {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"generate": True},
        "role": {"value": role_id},
    }


@dataclass
class MixedFile:
    rows: list[dict[str, str]]
    expected: dict[int, tuple[str, list[str]]] = field(default_factory=dict)  # row -> (status, messages)

    def count(self, status: str) -> int:
        return sum(1 for s, _ in self.expected.values() if s == status)


def mixed_file(roles: dict[str, int], desks: dict[str, int], n: int = 500) -> MixedFile:
    """n rows: mostly valid, with a known set of errors and duplicates."""
    agent, sales = roles["Agent"], desks["Sales"]
    out = MixedFile(rows=[])
    for i in range(n):
        number = i + 2  # the header is row 1
        ext = str(2000 + i)
        row = {
            "Username": f"user{i:03d}",
            "Email": f"user{i:03d}@example.com",
            "Virtual Extension": ext,
            "Role ID": str(agent),
            "First Name": f"First{i}",
            "Last Name": f"Last{i}",
            "Desk ID": str(sales),
            "Skill Groups": "English;Spanish",
            "PBX Device": ext,
            "SIP URI": f"sip:{ext}@pbx.example.com",
        }
        status, messages = "created", []
        if 10 <= i < 15:
            row["Email"] = "bob@"
            status, messages = "error", ['Email "bob@" is not a valid email address']
        elif 20 <= i < 25:
            row["Username"] = ""
            status, messages = "error", ["Username is missing"]
        elif 30 <= i < 33:
            row["Role ID"] = "999999"
            status, messages = "error", ["Role 999999 does not exist"]
        elif 40 <= i < 43:
            row["Desk ID"] = "888888"
            status, messages = "error", ["Desk 888888 does not exist"]
        elif 50 <= i < 53:
            row["Skill Groups"] = "English|Zulu"
            status, messages = "error", ['Skill group "Zulu" does not exist']
        elif 60 <= i < 63:
            row["Virtual Extension"] = "99"
            status, messages = "error", ["Virtual Extension 99 is outside the range 1000-9999"]
        elif 70 <= i < 73:
            taken = EXISTING[i - 70][2]
            row["Virtual Extension"] = taken
            row["SIP URI"] = f"sip:{taken}@pbx.example.com"
            status, messages = "duplicate", [f"Virtual Extension {taken} is already taken"]
        elif 80 <= i < 83:
            name = EXISTING[i - 80][0].upper()
            row["Username"] = name
            status, messages = "duplicate", [f'Username "{name}" already exists']
        elif 90 <= i < 94:
            earlier = i - 90
            row["Username"] = f"user{earlier:03d}"
            status, messages = "duplicate", [f'Username "user{earlier:03d}" repeats row {earlier + 2}']
        elif 100 <= i < 103:
            row["SIP URI"] = f"sip:{ext}"
            status, messages = (
                "error",
                [f'SIP URI "sip:{ext}" must hold a device and a domain, like sip:1001@pbx.example.com'],
            )
        elif i == 110:
            row["Email"] = "x@"
            row["Role ID"] = "999999"
            status, messages = (
                "error",
                ['Email "x@" is not a valid email address', "Role 999999 does not exist"],
            )
        elif i == 120:
            row["Email"] = "=cmd@"
            status, messages = "error", ['Email "=cmd@" is not a valid email address']
        elif 130 <= i < 132:
            row["Role ID"] = "Supervisor"  # a name that matches exactly one role
        out.rows.append(row)
        out.expected[number] = (status, messages)
    return out


def to_csv(rows: list[dict[str, str]], headers: list[str] = HEADERS, delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=headers, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def to_xlsx_from_template(template: bytes, rows: list[dict[str, str]]) -> bytes:
    """Fill the downloaded XLSX template the way a user would in Excel (numbers as numbers)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(template))
    ws = wb.active
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for row in rows:
        cells = []
        for h in headers:
            value = row.get(h, "")
            cells.append(
                int(value) if value.isdigit() and h in ("Virtual Extension", "Role ID", "Desk ID") else value
            )
        ws.append(cells)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # typed as text, as Excel does for a cell formatted as Text
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def stored_job(session, settings, names: list[str]) -> str:
    """A committed, queued import in the demo tenant of a file of these usernames."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    admin = session.scalar(select(User).where(User.username == "admin"))
    data = to_csv([{"Username": n, "Email": f"{n}@example.com"} for n in names], ["Username", "Email"])
    upload, _ = store_upload(session, settings, tenant.id, admin.id, "users.csv", data)
    job = create_job(session, tenant.id, admin.id, upload.id, basic_mapping(admin.role_id), dry_run=False)
    session.commit()
    return job.id
