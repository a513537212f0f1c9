"""Suggest a column mapping from a file's headers, by name and common synonyms."""

from __future__ import annotations

import re
from typing import Any

from shared.mapping.fields import FIELDS, Field
from shared.mapping.rules import Problem

# Header keys (lower-case letters and digits only), best first, come from the field registry.
# Bracketed parts are keys too, so Entra's "User name [userPrincipalName] Required" matches by
# "username" and "userprincipalname".
_COLUMNS: dict[str, tuple[str, ...]] = {
    "sip_uri": ("sipuri", "uri"),
    "device": ("pbxdevice", "devicenumber", "device"),
}
_NO_REFERENCES: Any = None  # rules of optional fields without entities look nothing up
# Used only when no column is plainly an email address.
_WEAK_EMAIL = ("alternateemailaddress", "alternateemail", "otheremail")
# Columns our own error file adds; a re-uploaded error file must not map them.
_OURS = {"row", "errors"}
_BRACKETED = re.compile(r"\[([^\]]*)\]|\(([^)]*)\)")
_REQUIRED = re.compile(r"\brequired\b", re.IGNORECASE)


def suggest_mapping(headers: list[str], preview: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Map headers to fields (API.md mapping shape), leaving out what nothing matches."""
    used: set[str] = set()
    mapping: dict[str, Any] = {}
    for f in FIELDS:
        column = _best(headers, f.synonyms, used)
        if f.key == "email" and column is None:
            column = _best(headers, _WEAK_EMAIL, used)
        if column is not None and _fits(f, column, preview or []):
            used.add(column)
            mapping[f.key] = {"column": column}
    if "email" not in mapping and "username" in mapping:
        # Microsoft 365 and Entra files have no email column: their user names are email addresses.
        column = mapping["username"]["column"]
        values = [row.get(column, "") for row in preview or []]
        if not preview or (any(values) and all("@" in value for value in values if value)):
            mapping["email"] = {"column": column}
    if "extension" not in mapping:
        mapping["extension"] = {"generate": True}
    columns = {}
    for name, keys in _COLUMNS.items():
        column = _best(headers, keys, used)
        if column is not None:
            used.add(column)
            columns[name] = column
    if columns:
        mapping["columns"] = columns
    return mapping


def _fits(f: Field, column: str, preview: list[dict[str, str]]) -> bool:
    """Whether an optional field's rule accepts the preview's values: a column that would make
    every row an error is no suggestion (Microsoft 365's "Mobile Phone" holds national numbers)."""
    if f.required or f.entity is not None:
        return True
    try:
        for row in preview:
            if row.get(column):
                f.check(row[column], f.label, _NO_REFERENCES)
    except Problem:
        return False
    return True


def _keys(header: str) -> list[str]:
    """The forms a header is matched by: its text without brackets or 'Required', then each bracket."""
    outside = _REQUIRED.sub(" ", _BRACKETED.sub(" ", header))
    inside = [a or b for a, b in _BRACKETED.findall(header)]
    return [key for key in map(_squash, [outside, *inside]) if key]


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _best(headers: list[str], keys: tuple[str, ...], used: set[str]) -> str | None:
    """The unused header matching the earliest key; among equals, the leftmost header."""
    best: tuple[int, int, str] | None = None
    for position, header in enumerate(headers):
        found = _keys(header)
        if header in used or not found or found[0] in _OURS:
            continue
        for key in found:
            if key in keys and (best is None or (keys.index(key), position) < best[:2]):
                best = (keys.index(key), position, header)
    return best[2] if best else None
