"""Row rules: every problem of a row, each message naming the field and the value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.files.reader import Row
from shared.mapping import rules
from shared.mapping.fields import FIELDS
from shared.mapping.parser import Mapping
from shared.mapping.rules import Problem, whole_digits
from shared.models import REFERENCE_LABELS, Desk, Role, SkillGroup, Tenant
from shared.text import quoted, shown

# The values a user is created from (JSON-safe; stored on the row result), by Field.attribute,
# plus the SIP device or URI. "extension" None means: to be generated.
Draft = dict[str, Any]
SIP_DEVICE, SIP_URI = "sip_device", "sip_uri"
# The mapping keys of the SIP columns, as problems name them.
SIP_DEVICE_KEY, SIP_URI_KEY = "sip.device", "sip.uri"


@dataclass(frozen=True)
class RowProblem:
    """One problem of a row: the mapping key of the field it is about (None: the whole row), and what."""

    field: str | None
    message: str


class References:
    """The tenant's roles, desks and skill groups, by ID and by exact (case-insensitive) name."""

    def __init__(self, tenant: Tenant, entities: dict[type, list[Any]]) -> None:
        self.extension_min, self.extension_max = tenant.extension_min, tenant.extension_max
        self.by_model: dict[type, tuple[dict[int, Any], dict[str, list[Any]]]] = {}
        for model, items in entities.items():
            by_name: dict[str, list[Any]] = {}
            for item in items:
                by_name.setdefault(item.name.strip().lower(), []).append(item)
            self.by_model[model] = ({i.id: i for i in items}, by_name)

    @classmethod
    def load(cls, session: Session, tenant: Tenant) -> References:
        """The tenant's entities, read once for a whole file."""
        return cls(
            tenant,
            {
                m: list(session.scalars(select(m).where(m.tenant_id == tenant.id)))
                for m in (Role, Desk, SkillGroup)
            },
        )

    def resolve(self, model: type, text: str) -> int:
        """The entity's ID for an ID or a name; raises Problem saying why not."""
        by_id, by_name = self.by_model[model]
        label = REFERENCE_LABELS[model]
        digits = whole_digits(text)
        if rules.DIGITS_RE.fullmatch(digits):
            if len(digits) <= rules.MAX_DIGITS and int(digits) in by_id:
                return int(digits)
            raise Problem(f"{label} {shown(digits)} does not exist")
        matches = by_name.get(text.lower(), [])
        if len(matches) == 1:
            return matches[0].id
        if len(matches) > 1:
            raise Problem(f"{label} {quoted(text)} matches several; use its ID")
        raise Problem(f"{label} {quoted(text)} does not exist")


def validate_row(row: Row, mapping: Mapping, refs: References) -> tuple[Draft, list[str]]:
    """The row's draft and every problem found in it (an empty list means valid)."""
    draft, problems = row_problems(row, mapping, refs)
    return draft, [p.message for p in problems]


def row_problems(row: Row, mapping: Mapping, refs: References) -> tuple[Draft, list[RowProblem]]:
    """The row's draft and every problem found in it, each with the field it is about.

    Only valid values enter the draft, so invalid ones never take part in duplicate checks.
    """
    problems: list[RowProblem] = []
    draft: Draft = {}
    for f in FIELDS:
        source = mapping.source(f.key)
        draft[f.attribute] = f.empty()
        if source is None or source.generate:
            continue
        if source.column is None:
            draft[f.attribute] = source.value
            continue
        text = row.values.get(source.column, "").strip()
        if not text:
            if f.required:
                problems.append(RowProblem(f.key, f"{f.label} is missing"))
            continue
        try:
            draft[f.attribute] = f.check(text, f.label, refs)
        except Problem as problem:
            problems.extend(RowProblem(f.key, message) for message in problem.messages)
    for attribute, key, column, label, check in (
        (SIP_DEVICE, SIP_DEVICE_KEY, mapping.device_column, "PBX device", rules.device),
        (SIP_URI, SIP_URI_KEY, mapping.uri_column, "SIP URI", rules.sip_uri),
    ):
        draft[attribute] = None
        if column is None:
            continue
        text = row.values.get(column, "").strip()
        if not text:
            problems.append(RowProblem(key, f"{label} is missing"))
            continue
        try:
            draft[attribute] = check(text, label, refs)
        except Problem as problem:
            problems.extend(RowProblem(key, message) for message in problem.messages)
    return draft, problems
