"""Row rules: every problem of a row, each message naming the field and the value."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.mapping import Mapping, Source
from shared.models import Desk, Role, SkillGroup, Tenant
from shared.reader import Row

USERNAME_RE = re.compile(r"^[A-Za-z0-9._@-]{3,64}$")
DIGITS_RE = re.compile(r"^\d+$")
EXCEL_WHOLE_RE = re.compile(r"^(\d+)\.0+$")  # 1001.0 as typed out of a spreadsheet
SIP_URI_RE = re.compile(
    r"^sips?:([^@\s;]+)@"
    r"([A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3})(:\d+)?(;\S*)?$"
)
LIST_SPLIT_RE = re.compile(r"[,;|]")
NAME_MAX = 100


@dataclass
class Draft:
    """The values a user will be created from (JSON-safe; stored on the row result)."""

    username: str = ""
    email: str = ""
    extension: str | None = None  # None: to be generated
    role_id: int | None = None
    desk_id: int | None = None
    skill_group_ids: list[int] = field(default_factory=list)
    first_name: str = ""
    last_name: str = ""
    sip_device: str | None = None
    sip_uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return asdict(self)


class References:
    """The tenant's roles, desks and skill groups, by ID and by exact (case-insensitive) name."""

    def __init__(self, session: Session, tenant: Tenant) -> None:
        self.tenant = tenant
        self.by_model: dict[type, tuple[dict[int, Any], dict[str, list[Any]]]] = {}
        for model in (Role, Desk, SkillGroup):
            items = session.scalars(select(model).where(model.tenant_id == tenant.id)).all()
            by_name: dict[str, list[Any]] = {}
            for item in items:
                by_name.setdefault(item.name.strip().lower(), []).append(item)
            self.by_model[model] = ({i.id: i for i in items}, by_name)

    def resolve(self, model: type, text: str, label: str) -> tuple[int | None, str | None]:
        """The entity's ID for an ID or a name, else the message saying why not."""
        by_id, by_name = self.by_model[model]
        whole = EXCEL_WHOLE_RE.match(text)
        digits = whole.group(1) if whole else text
        if digits.isdigit():
            if int(digits) in by_id:
                return int(digits), None
            return None, f"{label} {digits} does not exist"
        matches = by_name.get(text.lower(), [])
        if len(matches) == 1:
            return matches[0].id, None
        if len(matches) > 1:
            return None, f'{label} "{text}" matches several; use its ID'
        return None, f'{label} "{text}" does not exist'


def _digits(text: str) -> str:
    whole = EXCEL_WHOLE_RE.match(text)
    return whole.group(1) if whole else text


def validate_row(row: Row, mapping: Mapping, refs: References) -> tuple[Draft, list[str]]:
    """The row's draft and every problem found in it (an empty list means valid)."""
    v = row.values
    problems: list[str] = []
    draft = Draft()

    username = v.get(mapping.username, "").strip()
    if not username:
        problems.append("Username is missing")
    elif not USERNAME_RE.match(username):
        problems.append(f'Username "{username}" must be 3 to 64 letters, digits or . _ - @')
    else:
        draft.username = username  # only valid values take part in duplicate checks

    email = v.get(mapping.email, "").strip()
    if not email:
        problems.append("Email is missing")
    else:
        try:
            draft.email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            problems.append(f'Email "{email}" is not a valid email address')

    if mapping.extension is not None:
        raw = v.get(mapping.extension, "").strip()
        ext = _digits(raw)
        tenant = refs.tenant
        if not raw:
            problems.append("Virtual Extension is missing")
        elif not DIGITS_RE.match(ext):
            problems.append(f'Virtual Extension "{raw}" must contain digits only')
        elif not tenant.extension_min <= int(ext) <= tenant.extension_max:
            problems.append(
                f"Virtual Extension {ext} is outside the range {tenant.extension_min}-{tenant.extension_max}"
            )
        else:
            draft.extension = str(int(ext))

    draft.role_id = _one(v, mapping.role, Role, "Role", refs, problems, required=True)
    if mapping.desk is not None:
        draft.desk_id = _one(v, mapping.desk, Desk, "Desk", refs, problems, required=False)
    if mapping.skill_groups is not None:
        draft.skill_group_ids = _many(v, mapping.skill_groups, refs, problems)

    for attr, column, label in (
        ("first_name", mapping.first_name, "First name"),
        ("last_name", mapping.last_name, "Last name"),
    ):
        text = v.get(column, "").strip() if column else ""
        if len(text) > NAME_MAX:
            problems.append(f"{label} is longer than {NAME_MAX} characters")
        setattr(draft, attr, text[:NAME_MAX])

    if mapping.sip_mode == "classic_pbx" and mapping.device_column:
        raw = v.get(mapping.device_column, "").strip()
        device = _digits(raw)
        if not raw:
            problems.append("PBX device is missing")
        elif not DIGITS_RE.match(device):
            problems.append(f'PBX device "{raw}" must contain digits only')
        draft.sip_device = device or None
    if mapping.sip_mode == "custom_uri" and mapping.uri_column:
        uri = v.get(mapping.uri_column, "").strip()
        if not uri:
            problems.append("SIP URI is missing")
        elif not SIP_URI_RE.match(uri):
            problems.append(f'SIP URI "{uri}" must hold a device and a domain, like sip:1001@pbx.example.com')
        draft.sip_uri = uri or None
    return draft, problems


def _one(
    values: dict[str, str],
    source: Source,
    model: type,
    label: str,
    refs: References,
    problems: list[str],
    *,
    required: bool,
) -> int | None:
    if source.column is None:
        return source.value
    text = values.get(source.column, "").strip()
    if not text:
        if required:
            problems.append(f"{label} is missing")
        return None
    entity_id, problem = refs.resolve(model, text, label)
    if problem:
        problems.append(problem)
    return entity_id


def _many(values: dict[str, str], source: Source, refs: References, problems: list[str]) -> list[int]:
    if source.column is None:
        return list(source.value or [])
    ids: list[int] = []
    for part in LIST_SPLIT_RE.split(values.get(source.column, "")):
        part = part.strip()
        if not part:
            continue
        entity_id, problem = refs.resolve(SkillGroup, part, "Skill group")
        if problem:
            problems.append(problem)
        elif entity_id not in ids:
            ids.append(entity_id)
    return ids
