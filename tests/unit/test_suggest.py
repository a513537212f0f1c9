"""Suggested mappings: headers matched to fields by name, case, punctuation and synonyms."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.files.reader import inspect_table
from shared.mapping.suggest import suggest_mapping
from shared.mapping.templates import TEMPLATE_HEADERS

TEMPLATES = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "user-import-templates"


def test_our_template_maps_every_field():
    assert suggest_mapping(TEMPLATE_HEADERS) == {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"column": "Virtual Extension"},
        "role": {"column": "Role ID"},
        "first_name": {"column": "First Name"},
        "last_name": {"column": "Last Name"},
        "desk": {"column": "Desk ID"},
        "skill_groups": {"column": "Skill Groups"},
        "phone_number": {"column": "Phone Number"},
        "columns": {"sip_uri": "SIP URI", "device": "PBX Device"},
    }


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("USER NAME", "username"),
        ("login", "username"),
        ("User ID", "username"),
        ("userPrincipalName", "username"),
        ("E-mail", "email"),
        ("Email Address [Required]", "email"),
        ("mail", "email"),
        ("Ext.", "extension"),
        ("Mobile Phone", "phone_number"),
        ("Telephone", "phone_number"),
        ("Virtual Ext", "extension"),
        ("phoneExtension", "extension"),
        ("RoleID", "role"),
        ("Given name", "first_name"),
        ("forename", "first_name"),
        ("Family name", "last_name"),
        ("lastName", "last_name"),
        ("Desk", "desk"),
        ("Skill Group(s)", "skill_groups"),
        ("Skill Group ID(s)", "skill_groups"),
        ("skills", "skill_groups"),
    ],
)
def test_synonyms_ignore_case_spaces_and_punctuation(header, field):
    assert suggest_mapping(["Email", header] if field != "email" else [header]).get(field) == {
        "column": header
    }


def test_nothing_matched_is_left_out_and_extensions_are_generated():
    mapping = suggest_mapping(["Username", "Email", "Department"])
    assert mapping == {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"generate": True},
    }


def test_each_column_is_used_once_and_the_best_synonym_wins():
    mapping = suggest_mapping(["User", "Username", "Email", "Alternate email address", "Ext", "Extension"])
    assert mapping["username"] == {"column": "Username"}
    assert mapping["email"] == {"column": "Email"}
    assert mapping["extension"] == {"column": "Extension"}
    assert suggest_mapping(["Username", "Alternate email address"])["email"] == {
        "column": "Alternate email address"
    }


def test_our_error_file_columns_are_never_mapped():
    mapping = suggest_mapping(["Row", "Username", "Email", "Errors"])
    assert "Row" not in str(mapping) and "Errors" not in str(mapping)


def test_username_column_stands_in_for_email_only_when_it_holds_emails():
    assert suggest_mapping(["Login"])["email"] == {"column": "Login"}
    with_emails = [{"Login": "a@example.com"}, {"Login": ""}]
    assert suggest_mapping(["Login"], with_emails)["email"] == {"column": "Login"}
    assert "email" not in suggest_mapping(["Login"], [{"Login": "jdoe"}])


@pytest.mark.skipif(not TEMPLATES.is_dir(), reason="the shared corpus is not beside the project")
@pytest.mark.parametrize(
    ("name", "username", "first", "last", "phone"),
    [
        # M365's "Mobile Phone" holds national numbers (123-555-6641): no suggestion.
        ("m365__add-multiple-users_example.csv", "User Name", "First Name", "Last Name", None),
        (
            "entra__bulk-create-users_example.csv",
            "User name [userPrincipalName] Required",
            "First name [givenName]",
            "Last name [surname]",
            "Mobile phone [mobile]",
        ),
    ],
)
def test_microsoft_user_lists_get_a_sensible_mapping(name, username, first, last, phone):
    found = inspect_table((TEMPLATES / name).read_bytes(), name, max_rows=500, max_bytes=5 * 1024 * 1024)
    expected = {
        "username": {"column": username},
        "email": {"column": username},
        "extension": {"generate": True},
        "first_name": {"column": first},
        "last_name": {"column": last},
    } | ({"phone_number": {"column": phone}} if phone else {})
    assert suggest_mapping(found.headers, found.preview) == expected


def test_an_optional_column_whose_values_break_its_rule_is_not_suggested():
    headers = ["Username", "Email", "First Name"]
    long_names = [{"Username": "a", "Email": "a@x.io", "First Name": "x" * 101}]
    assert "first_name" not in suggest_mapping(headers, long_names)
    assert suggest_mapping(headers, [{"First Name": "Ann"}])["first_name"] == {"column": "First Name"}
