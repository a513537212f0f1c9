"""The whole import through the HTTP API, a real Redis and a real worker, on both databases."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import func, select

from shared.accounts.passwords import verify_password
from shared.models import AuditEvent, ImportRow, Role, Tenant, Upload, User
from tests.support.builders import (
    EXISTING,
    HEADERS,
    MAPPING_CUSTOM_URI,
    basic_mapping,
    mixed_file,
    parse_csv,
    to_csv,
    to_xlsx_from_template,
)


@pytest.fixture
def existing_users(session):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    role = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
    for username, email, ext in EXISTING:
        session.add(
            User(
                tenant_id=tenant.id,
                username=username,
                email=email,
                extension=ext,
                role_id=role.id,
                password_hash="x",
            )
        )
    session.commit()


@pytest.fixture
def mixed(imports, existing_users):
    return mixed_file(imports.reference("roles"), imports.reference("desks"))


def _assert_outcome(imports, status, mixed, session):
    assert status["status"] == "succeeded", status
    assert (status["total"], status["created"], status["duplicates"], status["errors"]) == (
        500,
        mixed.count("created"),
        mixed.count("duplicate"),
        mixed.count("error"),
    )
    assert status["processed"] == 500 and status["percent"] == 100
    assert (mixed.count("created"), mixed.count("duplicate"), mixed.count("error")) == (463, 10, 27)
    code, text = imports.download(status["id"], "errors")
    assert code == 200
    rows = parse_csv(text)
    assert list(rows[0].keys()) == [*HEADERS, "Row", "Errors"]
    got = {int(r["Row"]): r["Errors"] for r in rows}
    want = {n: "; ".join(m) for n, (s, m) in mixed.expected.items() if s != "created"}
    assert got == want
    # Formula-looking cells are neutralised in the file a spreadsheet will open.
    assert next(r for r in rows if r["Row"] == "122")["Email"] == "'=cmd@"
    assert session.scalar(select(func.count()).select_from(User).where(User.import_id == status["id"])) == 463


def test_mixed_csv_file_ends_with_exact_counts_and_errors(imports, mixed, worker, session):
    status = imports.run(to_csv(mixed.rows), MAPPING_CUSTOM_URI)
    _assert_outcome(imports, status, mixed, session)
    user = session.scalar(select(User).where(User.username == "user131"))
    assert user.role.name == "Supervisor" and user.sip_mode == "custom_uri"
    assert user.sip_uri == "sip:2131@pbx.example.com"
    assert sorted(g.name for g in user.skill_groups) == ["English", "Spanish"]
    assert user.desk_id == imports.reference("desks")["Sales"]


def test_same_file_as_xlsx_from_the_template_gives_the_same_result(imports, mixed, worker, session):
    template = imports.client.get("/api/v1/imports/template.xlsx", headers=imports.auth).get_data()
    status = imports.run(
        to_xlsx_from_template(template, mixed.rows), MAPPING_CUSTOM_URI, filename="users.xlsx"
    )
    _assert_outcome(imports, status, mixed, session)


def test_fixed_error_file_uploaded_again_creates_exactly_the_remaining_users(imports, mixed, worker, session):
    first = imports.run(to_csv(mixed.rows), MAPPING_CUSTOM_URI)
    _, text = imports.download(first["id"], "errors")
    fixed = []
    for row in parse_csv(text):
        n = int(row["Row"])
        row.update(
            {
                "Username": f"fixed{n}",
                "Email": f"fixed{n}@example.com",
                "Virtual Extension": str(5000 + n),
                "Role ID": str(imports.reference("roles")["Agent"]),
                "Desk ID": str(imports.reference("desks")["Support"]),
                "Skill Groups": "Billing",
                "SIP URI": f"sip:{5000 + n}@pbx.example.com",
            }
        )
        fixed.append(row)
    # The file goes back as downloaded, Row and Errors columns included.
    again = imports.run(to_csv(fixed, headers=[*HEADERS, "Row", "Errors"]), MAPPING_CUSTOM_URI)
    assert (again["status"], again["created"], again["duplicates"], again["errors"]) == (
        "succeeded",
        37,
        0,
        0,
    )
    assert session.scalar(select(func.count()).select_from(User)) == 1 + 3 + 463 + 37


def test_passwords_verify_and_are_destroyed_by_acknowledge(imports, worker, session, settings, base_settings):
    roles = imports.reference("roles")
    rows = [
        {"Username": f"pw{i}", "Email": f"pw{i}@example.com", "Role ID": str(roles["Agent"])}
        for i in range(7)
    ]
    mapping = {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"generate": True},
        "role": {"column": "Role ID"},
    }
    status = imports.run(to_csv(rows, headers=["Username", "Email", "Role ID"]), mapping)
    assert status["created"] == 7 and "success" in status["links"]
    code, text = imports.download(status["id"], "success")
    assert code == 200
    lines = parse_csv(text)
    assert list(lines[0].keys()) == ["Row", "Username", "Email", "Virtual Extension", "Temporary Password"]
    assert [line["Virtual Extension"] for line in lines] == [str(1000 + i) for i in range(7)]
    passwords = []
    for line in lines:
        user = session.scalar(select(User).where(User.username == line["Username"]))
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(settings, user.password_hash, line["Temporary Password"])
        assert len(line["Temporary Password"]) == 12
        passwords.append(line["Temporary Password"])
    ack = imports.client.post(f"/api/v1/imports/{status['id']}/acknowledge", headers=imports.auth)
    assert ack.status_code == 200 and "success" not in ack.get_json()["links"]
    code, _ = imports.download(status["id"], "success")
    assert code == 410
    resp = imports.client.get(f"/api/v1/imports/{status['id']}/success.csv", headers=imports.auth)
    assert resp.get_json()["error"]["code"] == "passwords_destroyed"
    session.expire_all()
    assert (
        session.scalar(
            select(func.count()).select_from(ImportRow).where(ImportRow.password_encrypted.is_not(None))
        )
        == 0
    )
    redis = Redis.from_url(base_settings.redis_url)
    dump = b"".join(redis.dump(k) or b"" for k in redis.scan_iter("*"))
    assert not any(p.encode() in dump for p in passwords)
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"import.success_downloaded", "import.acknowledged"} <= actions


def test_digits_only_passwords_are_ten_digits(imports, worker):
    roles = imports.reference("roles")
    rows = [{"Username": f"dg{i}", "Email": f"dg{i}@example.com"} for i in range(3)]
    mapping = {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"generate": True},
        "role": {"value": roles["Agent"]},
        "digits_only_passwords": True,
    }
    status = imports.run(to_csv(rows, headers=["Username", "Email"]), mapping)
    _, text = imports.download(status["id"], "success")
    passwords = [line["Temporary Password"] for line in parse_csv(text)]
    assert len(passwords) == 3 and all(len(p) == 10 and p.isdigit() for p in passwords)


def test_classic_pbx_without_a_device_is_an_error(imports, worker, session):
    domains = imports.client.get("/api/v1/pbx-domains", headers=imports.auth).get_json()["items"]
    rows = [
        {"Username": "pbx1", "Email": "pbx1@example.com", "Ext": "3001", "Device": "3001"},
        {"Username": "pbx2", "Email": "pbx2@example.com", "Ext": "3002", "Device": ""},
    ]
    mapping = {
        "username": {"column": "Username"},
        "email": {"column": "Email"},
        "extension": {"column": "Ext"},
        "role": {"value": imports.reference("roles")["Agent"]},
        "sip": {"mode": "classic_pbx", "domain_id": domains[0]["id"], "device": {"column": "Device"}},
        "auth_type": "google_2fa",
        "security": {
            "allowed_networks": ["10.0.0.0/8"],
            "session_timeout_minutes": 480,
            "force_password_change": False,
            "lock_after_failed_logins": 5,
        },
    }
    status = imports.run(to_csv(rows, headers=["Username", "Email", "Ext", "Device"]), mapping)
    assert (status["created"], status["errors"]) == (1, 1)
    _, text = imports.download(status["id"], "errors")
    assert parse_csv(text)[0]["Errors"] == "PBX device is missing"
    user = session.scalar(select(User).where(User.username == "pbx1"))
    assert (user.sip_mode, user.pbx_domain_id, user.sip_device, user.auth_type) == (
        "classic_pbx",
        domains[0]["id"],
        "3001",
        "google_2fa",
    )
    assert (
        user.allowed_networks,
        user.session_timeout_minutes,
        user.lock_after_failed_logins,
        user.must_change_password,
    ) == (["10.0.0.0/8"], 480, 5, False)
    _, success = imports.download(status["id"], "success")
    assert parse_csv(success)[0]["SIP Device/URI"] == "3001"


def test_dry_run_reports_without_creating(imports, mixed, worker, session):
    status = imports.run(to_csv(mixed.rows), MAPPING_CUSTOM_URI, dry_run=True)
    assert status["dry_run"] is True and status["status"] == "succeeded"
    assert (status["created"], status["duplicates"], status["errors"]) == (463, 10, 27)
    assert "success" not in status["links"] and "errors" in status["links"]
    assert session.scalar(select(func.count()).select_from(User)) == 4


@pytest.mark.parametrize(
    ("data", "filename", "code", "http"),
    [
        (
            to_csv(
                [{"Username": f"u{i}", "Email": f"u{i}@example.com"} for i in range(501)],
                ["Username", "Email"],
            ),
            "users.csv",
            "too_many_rows",
            400,
        ),
        (b"bob,bob@example.com,1001\r\nann,ann@example.com,1002\r\n", "users.csv", "no_header", 400),
        (b"Username,Email\r\n" + b"x" * (6 * 1024 * 1024), "big.csv", "file_too_large", 413),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "users.csv", "unsupported_format", 415),
    ],
)
def test_bad_files_are_refused_and_nothing_is_kept(imports, session, data, filename, code, http):
    resp = imports.upload(data, filename)
    assert resp.status_code == http, resp.get_json()
    assert resp.get_json()["error"]["code"] == code
    assert resp.get_json()["error"]["message"]
    assert session.scalar(select(func.count()).select_from(Upload)) == 0
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_invalid_mapping_lists_every_problem(imports):
    up = imports.upload(to_csv([{"Username": "a1", "Email": "a1@example.com"}], ["Username", "Email"]))
    upload_id = up.get_json()["upload_id"]
    resp = imports.start(
        upload_id,
        {
            "username": {"column": "Login"},
            "email": {"column": "Email"},
            "role": {"value": 999999},
            "desk": {"value": 888888},
            "sip": {"mode": "classic_pbx"},
            "auth_type": "sms",
        },
    )
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_mapping"
    fields = {p["field"] for p in error["details"]}
    assert fields == {"username", "extension", "role", "desk", "sip.domain_id", "sip.device", "auth_type"}
    assert 'the file has no column "Login"' in error["message"]
    assert "Role 999999 does not exist" in error["message"]


def test_status_and_events_of_another_tenant_answer_404(imports, worker, session, settings):
    from shared.dialer.tenants import create_admin, create_tenant

    rows = [{"Username": "iso1", "Email": "iso1@example.com"}]
    mapping = basic_mapping(imports.reference("roles")["Agent"])
    status = imports.run(to_csv(rows, headers=["Username", "Email"]), mapping)
    other = create_tenant(session, "other")
    create_admin(session, settings, other, "boss", "boss@other.example", "Other-Pass-1")
    session.commit()
    token = imports.client.post(
        "/api/v1/auth/token", json={"tenant": "other", "username": "boss", "password": "Other-Pass-1"}
    ).get_json()["token"]
    theirs = {"Authorization": f"Bearer {token}"}
    for path in ("", "/events", "/errors.csv", "/success.csv"):
        assert (
            imports.client.get(f"/api/v1/imports/{status['id']}{path}", headers=theirs).status_code == 404
        ), path
    for path in ("/acknowledge", "/cancel"):
        assert imports.client.post(f"/api/v1/imports/{status['id']}{path}", headers=theirs).status_code == 404
    assert imports.client.get(f"/api/v1/uploads/{status['upload_id']}", headers=theirs).status_code == 404
    assert imports.client.get("/api/v1/imports", headers=theirs).get_json()["items"] == []
    again = imports.start(status["upload_id"], mapping)  # the owner still can
    assert again.status_code == 202
    assert imports.wait_done(again.get_json()["id"])["duplicates"] == 1
    resp = imports.client.post(
        "/api/v1/imports", headers=theirs, json={"upload_id": status["upload_id"], "mapping": mapping}
    )
    assert resp.status_code == 404


def test_events_stream_ends_with_the_final_status(imports, worker):
    rows = [{"Username": f"ev{i}", "Email": f"ev{i}@example.com"} for i in range(120)]
    mapping = basic_mapping(imports.reference("roles")["Agent"])
    up = imports.upload(to_csv(rows, headers=["Username", "Email"])).get_json()
    job = imports.start(up["upload_id"], mapping).get_json()
    resp = imports.client.get(f"/api/v1/imports/{job['id']}/events", headers=imports.auth)
    assert resp.mimetype == "text/event-stream"
    import json

    events = [
        json.loads(chunk.split("data: ", 1)[1])
        for chunk in resp.get_data(as_text=True).split("\n\n")
        if chunk.startswith("event: progress")
    ]
    # That `processed` never steps back is test_scheduling.py's to check, where it is made so.
    assert events[-1]["status"] == "succeeded" and events[-1]["created"] == 120


def test_list_imports_newest_first(imports, worker):
    mapping = basic_mapping(imports.reference("roles")["Agent"])
    first = imports.run(
        to_csv([{"Username": "li1", "Email": "li1@example.com"}], ["Username", "Email"]), mapping
    )
    second = imports.run(
        to_csv([{"Username": "li2", "Email": "li2@example.com"}], ["Username", "Email"]), mapping
    )
    items = imports.client.get("/api/v1/imports", headers=imports.auth).get_json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
    assert items[0]["filename"] == "users.csv" and items[0]["created_by"] == "admin"
    users = imports.client.get(f"/api/v1/users?import_id={first['id']}", headers=imports.auth).get_json()
    assert [u["username"] for u in users["items"]] == ["li1"]


def test_templates_have_every_field_and_an_example(imports):
    resp = imports.client.get("/api/v1/imports/template.csv", headers=imports.auth)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = parse_csv(resp.get_data().decode("utf-8-sig"))
    assert list(rows[0].keys()) == HEADERS and len(rows) == 1
    up = imports.upload(
        imports.client.get("/api/v1/imports/template.xlsx", headers=imports.auth).get_data(), "template.xlsx"
    ).get_json()
    assert up["headers"] == HEADERS and up["row_count"] == 1
    assert set(up["suggested_mapping"]) >= {
        "username",
        "email",
        "extension",
        "role",
        "first_name",
        "last_name",
        "desk",
        "skill_groups",
    }


def test_with_redis_gone_status_and_events_come_from_the_database(imports, worker, base_settings):
    from web import create_app

    rows = [{"Username": "rg1", "Email": "rg1@example.com"}]
    mapping = basic_mapping(imports.reference("roles")["Agent"])
    done = imports.run(to_csv(rows, headers=["Username", "Email"]), mapping)
    cut_off = create_app(base_settings.with_(redis_url="redis://127.0.0.1:1/0")).test_client()
    status = cut_off.get(f"/api/v1/imports/{done['id']}", headers=imports.auth)
    assert status.status_code == 200 and status.get_json()["created"] == 1
    events = cut_off.get(f"/api/v1/imports/{done['id']}/events", headers=imports.auth).get_data(as_text=True)
    assert '"status": "succeeded"' in events
    refused = cut_off.post(
        "/api/v1/imports", headers=imports.auth, json={"upload_id": done["upload_id"], "mapping": mapping}
    )
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "queue_unavailable"


def test_phone_numbers_are_checked_stored_in_e164_and_shown(imports, worker, client, auth):
    role = imports.reference("roles")["Agent"]
    rows = [
        {"Username": "ph1", "Email": "ph1@example.com", "Phone": "+44 20 7946 0958"},
        {"Username": "ph2", "Email": "ph2@example.com", "Phone": "0033 6 12 34 56 78"},
        {"Username": "ph3", "Email": "ph3@example.com", "Phone": ""},
        {"Username": "ph4", "Email": "ph4@example.com", "Phone": "555-1234"},
    ]
    up = imports.upload(to_csv(rows, ["Username", "Email", "Phone"])).get_json()
    status = imports.wait_done(
        imports.start(
            up["upload_id"], basic_mapping(role) | {"phone_number": {"column": "Phone"}}
        ).get_json()["id"]
    )
    assert (status["created"], status["errors"]) == (3, 1)
    _, errors = imports.download(status["id"], "errors")
    assert parse_csv(errors)[0]["Errors"] == (
        'Phone number "555-1234" must be an international number like +1 202 555 0143'
    )
    _, success = imports.download(status["id"], "success")
    # A cell starting with + is neutralised against formula injection, like every cell we write.
    assert [(r["Username"], r["Phone number"]) for r in parse_csv(success)] == [
        ("ph1", "'+442079460958"),
        ("ph2", "'+33612345678"),
        ("ph3", ""),
    ]
    users = client.get("/api/v1/users?q=ph", headers=auth).get_json()["items"]
    assert {u["username"]: u["phone_number"] for u in users} == {
        "ph1": "+442079460958",
        "ph2": "+33612345678",
        "ph3": None,
    }
