"""Value rules of a row's cells: each turns a cell's text into a clean value or raises Problem.

Messages name the field and show the value the way a user can find it in the file: cut short,
with invisible characters spelled out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

from shared.text import quoted, shown

USERNAME_RE = re.compile(r"[A-Za-z0-9._@-]{3,64}", re.ASCII)
DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
EXCEL_WHOLE_RE = re.compile(r"([0-9]+)\.0+", re.ASCII)  # 1001.0 as typed out of a spreadsheet
LIST_SPLIT_RE = re.compile(r"[,;|]")
# More digits than any ID or extension can have; also keeps int() away from huge strings.
MAX_DIGITS = 18


class Problem(Exception):
    """A cell's value breaks rules; each message names the field and the value."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class Resolver(Protocol):
    """Finds the tenant's entities by ID or name (shared.validation.References)."""

    extension_min: int
    extension_max: int

    def resolve(self, model: type, text: str) -> int:
        """The entity's ID for an ID or a name; raises Problem."""
        ...


Check = Callable[[str, str, Resolver], Any]  # (text, label, resolver) -> clean value


def whole_digits(text: str) -> str:
    """1001.0 (a number out of a spreadsheet) as 1001; anything else unchanged."""
    whole = EXCEL_WHOLE_RE.fullmatch(text)
    return whole.group(1) if whole else text


def username(text: str, label: str, _resolver: Resolver) -> str:
    """3 to 64 letters, digits or . _ - @."""
    if not USERNAME_RE.fullmatch(text):
        raise Problem(f"{label} {quoted(text)} must be 3 to 64 letters, digits or . _ - @")
    return text


def email(text: str, label: str, _resolver: Resolver) -> str:
    """Valid syntax (no network look-up), lower-cased."""
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise Problem(f"{label} {quoted(text)} is not a valid email address") from None


def extension(text: str, label: str, resolver: Resolver) -> str:
    """Digits 0-9 only, no leading zero, inside the tenant's range."""
    digits = whole_digits(text)
    low, high = resolver.extension_min, resolver.extension_max
    if not DIGITS_RE.fullmatch(digits):
        raise Problem(f"{label} {quoted(text)} must contain digits 0-9 only")
    if len(digits) > 1 and digits.startswith("0"):
        # 08002 and 8002 are different numbers to dial: never turn one into the other silently.
        raise Problem(f"{label} {quoted(text)} must not start with 0")
    if len(digits) > MAX_DIGITS or not low <= int(digits) <= high:
        raise Problem(f"{label} {shown(digits)} is outside the range {low}-{high}")
    return digits


def device(text: str, label: str, _resolver: Resolver) -> str:
    """A PBX device number: digits only."""
    digits = whole_digits(text)
    if not DIGITS_RE.fullmatch(digits):
        raise Problem(f"{label} {quoted(text)} must contain digits 0-9 only")
    return digits


SIP_URI_RE = re.compile(
    r"sips?:([^@\s;]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3})(:\d+)?(;\S*)?", re.ASCII
)


def sip_uri(text: str, label: str, _resolver: Resolver) -> str:
    """A sip: URI holding both a device and a domain."""
    if not SIP_URI_RE.fullmatch(text):
        raise Problem(
            f"{label} {quoted(text)} must hold a device and a domain, like sip:1001@pbx.example.com"
        )
    return text


def text_of(most: int) -> Check:
    """Free text of at most `most` characters."""

    def check(text: str, label: str, _resolver: Resolver) -> str:
        if len(text) > most:
            raise Problem(f"{label} is longer than {most} characters")
        return text

    return check


def reference(model: type) -> Check:
    """One entity of the tenant, by ID or by a name that matches exactly one."""

    def check(text: str, _label: str, resolver: Resolver) -> int:
        return resolver.resolve(model, text)

    return check


def references(model: type) -> Check:
    """Several entities, separated by , ; or |; every unknown one is named."""

    def check(text: str, _label: str, resolver: Resolver) -> list[int]:
        ids: list[int] = []
        problems: list[str] = []
        for part in LIST_SPLIT_RE.split(text):
            part = part.strip()
            if not part:
                continue
            try:
                entity_id = resolver.resolve(model, part)
            except Problem as problem:
                problems.extend(problem.messages)
                continue
            if entity_id not in ids:
                ids.append(entity_id)
        if problems:
            raise Problem(*problems)
        return ids

    return check
