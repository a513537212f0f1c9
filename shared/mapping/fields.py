"""The mappable user fields: one typed table that every layer reads.

The mapping parser, row validation, suggested mappings, import templates, the user's JSON,
the mapping page, the Users table and the success file are all driven by FIELDS. A new
optional field is one entry here, a column on User, and a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import phonenumbers

from shared import text
from shared.mapping import rules
from shared.models import Desk, Role, SkillGroup, User


class Source(StrEnum):
    """Where a mapped field's value may come from."""

    COLUMN = "column"  # {"column": "<header>"}: one value a row
    VALUE = "value"  # {"value": <ID or IDs>}: one value for all rows, chosen in the dialer
    GENERATE = "generate"  # {"generate": true}: made by the import (extensions)


@dataclass(frozen=True)
class Field:
    """One mappable field: how it is mapped, checked, suggested, shown and stored."""

    key: str  # the mapping's key (API.md)
    label: str  # what people read: mapping page, messages, templates, tables
    check: rules.Check  # turns a cell's text into the stored value, or raises rules.Problem
    attribute: str  # the validated row's key, the user's JSON key and (but for lists) User's column
    required: bool = False
    sources: tuple[Source, ...] = (Source.COLUMN,)
    entity: type | None = None  # the tenant's Role, Desk or SkillGroup a value refers to
    relation: str = ""  # User's relationship to that entity (or list of entities)
    many: bool = False  # a list of entities
    blank: Any = ""  # the value of an unmapped or empty optional cell
    synonyms: tuple[str, ...] = ()  # header keys (lower-case letters and digits) for suggestions, best first
    template_header: str = ""
    example: str = ""
    numeric_example: bool = False  # Excel holds the template's example as a number
    unique: bool = False  # unique per tenant: a repeat is a duplicate, not an error
    taken: str = "already exists"  # how a duplicate reads
    quoted: bool = True  # values shown in quotes in messages
    searchable: bool = False  # matched by the Users table's search
    in_success_file: bool = False  # a column of success.csv (when any created row has a value)
    hint: str = ""  # help under the field on the mapping page

    @property
    def column_only(self) -> bool:
        """Whether the field can only come from a file column."""
        return self.sources == (Source.COLUMN,)

    def empty(self) -> Any:
        """The value of an unmapped or blank optional field (a fresh list for lists)."""
        return [] if self.many else self.blank

    def read(self, user: User) -> Any:
        """The field's value on a user (JSON-safe)."""
        if self.many:
            return sorted(entity.id for entity in getattr(user, self.relation))
        return getattr(user, self.attribute)

    def write(self, user: User, value: Any, entities: dict[int, Any]) -> None:
        """Set the field on a new user; lists of entities are looked up in `entities`."""
        if self.many:
            if value:  # an untouched empty collection costs the flush nothing
                setattr(user, self.relation, [entities[i] for i in value if i in entities])
        else:
            setattr(user, self.attribute, self.blank if value is None else value)

    def shown(self, value: str) -> str:
        """A value of this field as messages show it."""
        return text.quoted(value) if self.quoted else text.shown(value)

    def display(self, user: User) -> str:
        """The field as the Users table shows it: names for entities."""
        if self.many:
            return ", ".join(entity.name for entity in getattr(user, self.relation))
        value = getattr(user, self.relation or self.attribute)
        if self.entity is not None:
            return value.name if value is not None else ""
        return "" if value is None else str(value)


def _phone(cell: str, label: str, _resolver: rules.Resolver) -> str:
    """An international number (+ or 00 and the country code), stored as E.164: +442079460958."""
    try:
        number = phonenumbers.parse("+" + cell[2:] if cell.startswith("00") else cell, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        example = "+1 202 555 0143"
        raise rules.Problem(f"{label} {text.quoted(cell)} must be an international number like {example}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


FIELDS: tuple[Field, ...] = (
    Field(
        "username",
        "Username",
        rules.username,
        "username",
        required=True,
        synonyms=(
            "username",
            "userprincipalname",
            "upn",
            "login",
            "loginname",
            "userlogin",
            "userid",
            "user",
        ),
        template_header="Username",
        example="jdoe",
        unique=True,
        searchable=True,
        in_success_file=True,
    ),
    Field(
        "email",
        "Email",
        rules.email,
        "email",
        required=True,
        synonyms=("email", "emailaddress", "mail", "emailid"),
        template_header="Email",
        example="jdoe@example.com",
        unique=True,
        searchable=True,
        in_success_file=True,
    ),
    Field(
        "extension",
        "Virtual Extension",
        rules.extension,
        "extension",
        required=True,
        sources=(Source.COLUMN, Source.GENERATE),
        synonyms=("virtualextension", "virtualext", "extension", "ext", "phoneextension", "extensionnumber"),
        template_header="Virtual Extension",
        example="1001",
        numeric_example=True,
        blank=None,
        unique=True,
        taken="is already taken",
        quoted=False,
        searchable=True,
        in_success_file=True,
    ),
    Field(
        "role",
        "Role",
        rules.reference(Role),
        "role_id",
        required=True,
        sources=(Source.COLUMN, Source.VALUE),
        entity=Role,
        relation="role",
        blank=None,
        synonyms=("roleid", "role"),
        template_header="Role ID",
        example="1",
        numeric_example=True,
    ),
    Field(
        "first_name",
        "First name",
        rules.text_of(100),
        "first_name",
        synonyms=("firstname", "givenname", "forename"),
        template_header="First Name",
        example="John",
        searchable=True,
    ),
    Field(
        "last_name",
        "Last name",
        rules.text_of(100),
        "last_name",
        synonyms=("lastname", "surname", "familyname"),
        template_header="Last Name",
        example="Doe",
        searchable=True,
    ),
    Field(
        "desk",
        "Desk",
        rules.reference(Desk),
        "desk_id",
        sources=(Source.COLUMN, Source.VALUE),
        entity=Desk,
        relation="desk",
        blank=None,
        synonyms=("deskid", "desk"),
        template_header="Desk ID",
        example="1",
        numeric_example=True,
    ),
    Field(
        "skill_groups",
        "Skill Groups",
        rules.references(SkillGroup),
        "skill_group_ids",
        sources=(Source.COLUMN, Source.VALUE),
        entity=SkillGroup,
        relation="skill_groups",
        many=True,
        synonyms=("skillgroupids", "skillgroupid", "skillgroups", "skillgroup", "skills"),
        template_header="Skill Groups",
        example="1;2",
        hint="IDs or names separated by , ; or |",
    ),
    Field(
        "phone_number",
        "Phone number",
        _phone,
        "phone_number",
        synonyms=("phonenumber", "phone", "mobile", "mobilephone", "telephone", "telephonenumber", "tel"),
        template_header="Phone Number",
        example="+1 202 555 0143",
        blank=None,
        searchable=True,
        in_success_file=True,
        hint="International format: + and the country code",
    ),
)
BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
REQUIRED: tuple[Field, ...] = tuple(f for f in FIELDS if f.required)
OPTIONAL: tuple[Field, ...] = tuple(f for f in FIELDS if not f.required)
UNIQUE: tuple[Field, ...] = tuple(f for f in FIELDS if f.unique)
