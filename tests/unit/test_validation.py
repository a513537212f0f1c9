"""Row rules and mapping checks without a database (references built in memory)."""

from __future__ import annotations

import pytest

from shared.files.reader import Row
from shared.mapping.parser import parse_mapping
from shared.mapping.validation import References, validate_row
from shared.models import Desk, Role, SkillGroup, Tenant

HEADERS = ["User", "Mail", "Ext", "Role", "Desk", "Skills", "URI", "Device", "Phone"]


def _refs() -> References:
    tenant = Tenant(id=1, slug="t", name="t", extension_min=1000, extension_max=1999)
    return References(
        tenant,
        {
            Role: [Role(id=1, tenant_id=1, name="Agent"), Role(id=2, tenant_id=1, name="Supervisor")],
            Desk: [Desk(id=5, tenant_id=1, name="Sales"), Desk(id=6, tenant_id=1, name="sales ")],
            SkillGroup: [
                SkillGroup(id=7, tenant_id=1, name="English"),
                SkillGroup(id=8, tenant_id=1, name="VIP"),
            ],
        },
    )


def _mapping(**extra):
    raw = {
        "username": {"column": "User"},
        "email": {"column": "Mail"},
        "extension": {"column": "Ext"},
        "role": {"column": "Role"},
        "desk": {"column": "Desk"},
        "skill_groups": {"column": "Skills"},
    } | extra
    mapping, parser = parse_mapping(raw, HEADERS)
    assert mapping is not None, parser.problems
    return mapping


def _row(**values: str) -> Row:
    base = {
        "User": "ann.lee",
        "Mail": "Ann.Lee@Example.COM",
        "Ext": "1001",
        "Role": "1",
        "Desk": "",
        "Skills": "",
    }
    return Row(number=7, values={h: "" for h in HEADERS} | base | values)


def test_a_valid_row_is_normalised():
    draft, problems = validate_row(
        _row(Ext="1001.0", Role="supervisor", Skills="English; 8 |VIP"), _mapping(), _refs()
    )
    assert problems == []
    assert (draft["email"], draft["extension"], draft["role_id"], draft["skill_group_ids"]) == (
        "ann.lee@example.com",
        "1001",
        2,
        [7, 8],
    )


def test_every_problem_of_a_row_is_reported_with_field_and_value():
    row = _row(User="", Mail="bob@", Ext="12a", Role="17", Desk="sales", Skills="English,Zulu")
    _, problems = validate_row(row, _mapping(), _refs())
    assert problems == [
        "Username is missing",
        'Email "bob@" is not a valid email address',
        'Virtual Extension "12a" must contain digits 0-9 only',
        "Role 17 does not exist",
        'Desk "sales" matches several; use its ID',
        'Skill group "Zulu" does not exist',
    ]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"Ext": "999"}, "Virtual Extension 999 is outside the range 1000-1999"),
        ({"Ext": ""}, "Virtual Extension is missing"),
        ({"User": "a b"}, 'Username "a b" must be 3 to 64 letters, digits or . _ - @'),
        ({"Role": ""}, "Role is missing"),
        ({"Ext": "9" * 5000}, f"Virtual Extension {'9' * 59}… is outside the range 1000-1999"),
        ({"Role": "7" * 5000}, f"Role {'7' * 59}… does not exist"),
        ({"Skills": "8" * 5000}, f"Skill group {'8' * 59}… does not exist"),
        ({"Ext": "01500"}, 'Virtual Extension "01500" must not start with 0'),
        ({"Ext": "\uff11\uff15\uff10\uff10"}, 'Virtual Extension "１５００" must contain digits 0-9 only'),
        ({"User": "ann\u200blee"}, 'Username "annU+200Blee" must be 3 to 64 letters, digits or . _ - @'),
        ({"Mail": "x" * 2000}, f'Email "{"x" * 59}…" is not a valid email address'),
    ],
)
def test_single_rules(values, problem):
    _, problems = validate_row(_row(**values), _mapping(), _refs())
    assert problems == [problem]


def test_sip_rules():
    uri_mapping = _mapping(sip={"mode": "custom_uri", "uri": {"column": "URI"}})
    assert validate_row(_row(URI="sip:1001@pbx.example.com"), uri_mapping, _refs())[1] == []
    assert validate_row(_row(URI="sip:1001"), uri_mapping, _refs())[1] == [
        'SIP URI "sip:1001" must hold a device and a domain, like sip:1001@pbx.example.com'
    ]
    pbx = _mapping(sip={"mode": "classic_pbx", "domain_id": 3, "device": {"column": "Device"}})
    assert validate_row(_row(Device=""), pbx, _refs())[1] == ["PBX device is missing"]
    assert validate_row(_row(Device="1001.0"), pbx, _refs())[0]["sip_device"] == "1001"


def test_mapping_lists_every_problem_at_once():
    _, parser = parse_mapping(
        {
            "username": {"column": "Nope"},
            "email": {"value": "x"},
            "role": {"value": "Agent"},
            "sip": {"mode": "custom_uri"},
            "security": {"allowed_networks": ["10.0.0.0/8", "banana"], "session_timeout_minutes": 0},
            "digits_only_passwords": "yes",
            "colour": "red",
        },
        HEADERS,
    )
    assert [p["field"] for p in parser.problems] == [
        "colour",
        "username",
        "email",
        "extension",
        "role",
        "sip.uri",
        "security.allowed_networks",
        "security.session_timeout_minutes",
        "digits_only_passwords",
    ]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1-202-555-0143", "+12025550143"),
    ],
)
def test_phone_numbers_are_stored_in_e164(text, stored):
    draft, problems = validate_row(_row(Phone=text), _mapping(phone_number={"column": "Phone"}), _refs())
    assert (problems, draft["phone_number"]) == ([], stored)


@pytest.mark.parametrize("text", ["555-1234", "+1 555 555 5555", "call me"])
def test_phone_numbers_must_be_international_and_real(text):
    _, problems = validate_row(_row(Phone=text), _mapping(phone_number={"column": "Phone"}), _refs())
    assert problems == [f'Phone number "{text}" must be an international number like +1 202 555 0143']
