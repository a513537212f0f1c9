"""Saved mappings through the API: saved, offered to the next file whose columns fit, deleted."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import Desk, PbxDomain, Role, Tenant
from tests.support.builders import to_csv


def weekly(imports) -> dict:
    return {
        "username": {"column": "Login"},
        "email": {"column": "Mail"},
        "extension": {"column": "Ext"},
        "role": {"value": imports.reference("roles")["Agent"]},
        "desk": {"value": imports.reference("desks")["Sales"]},
        "last_name": {"column": "Surname"},
        "sip": {"mode": "webrtc"},
        "auth_type": "email_otp",
        "security": None,
        "digits_only_passwords": False,
    }


def save(imports, name: str, mapping: dict):
    return imports.client.post(
        "/api/v1/mappings", headers=imports.auth, json={"name": name, "mapping": mapping}
    )


def upload(imports, headers: list[str]) -> dict:
    resp = imports.upload(to_csv([{h: "" for h in headers} | {headers[0]: "x"}], headers=headers))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_saved_mapping_is_offered_to_a_file_with_its_columns_in_another_order(imports, worker):
    first = save(imports, "Weekly agents", weekly(imports))
    assert first.status_code == 201, first.get_json()
    saved = first.get_json()
    assert saved["name"] == "Weekly agents" and saved["columns"] == ["Login", "Mail", "Ext", "Surname"]
    assert saved["created_by"] == "admin"

    answer = upload(imports, ["Surname", "Ext", "Notes", "Mail", "Login"])
    assert answer["suggested_from"] == "Weekly agents"
    assert answer["suggested_mapping"] == weekly(imports)
    assert "suggestion_problems" not in answer
    again = imports.client.get(f"/api/v1/uploads/{answer['upload_id']}", headers=imports.auth).get_json()
    assert again["suggested_from"] == "Weekly agents"
    rows = [{"Surname": "Doe", "Ext": "1500", "Notes": "", "Mail": "sm1@example.com", "Login": "sm1"}]
    status = imports.run(to_csv(rows, headers=list(rows[0])), answer["suggested_mapping"])
    assert status["created"] == 1

    # A file without one of its columns gets the suggestion from its headers.
    other = upload(imports, ["Login", "Mail"])
    assert "suggested_from" not in other
    assert other["suggested_mapping"]["extension"] == {"generate": True}

    # The newest that fits wins; saving a name again replaces that mapping.
    small = {"username": {"column": "Login"}, "email": {"column": "Mail"}, "extension": {"generate": True},
             "role": {"value": imports.reference("roles")["Supervisor"]}}  # fmt: skip
    assert save(imports, "Small", small).status_code == 201
    assert upload(imports, ["Login", "Mail", "Ext", "Surname"])["suggested_from"] == "Small"
    replaced = save(imports, "weekly AGENTS", weekly(imports) | {"auth_type": "disabled"})
    assert replaced.status_code == 200 and replaced.get_json()["id"] == saved["id"]
    assert (
        upload(imports, ["Login", "Mail", "Ext", "Surname"])["suggested_mapping"]["auth_type"] == "disabled"
    )
    listed = imports.client.get("/api/v1/mappings", headers=imports.auth).get_json()["items"]
    assert [m["name"] for m in listed] == ["weekly AGENTS", "Small"]

    assert imports.client.delete(f"/api/v1/mappings/{saved['id']}", headers=imports.auth).status_code == 204
    assert upload(imports, ["Login", "Mail", "Ext", "Surname"])["suggested_from"] == "Small"
    gone = imports.client.delete(f"/api/v1/mappings/{saved['id']}", headers=imports.auth)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "not_found"


def test_a_saved_mapping_naming_a_deleted_role_leaves_that_field_unmapped_and_says_so(
    imports, worker, session
):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    temp = Role(tenant_id=tenant.id, name="Temporary", permissions=[])
    desk = Desk(tenant_id=tenant.id, name="Pop-up")
    pbx = PbxDomain(tenant_id=tenant.id, name="Old PBX", domain="old.pbx.example")
    session.add_all([temp, desk, pbx])
    session.commit()
    sip = {"mode": "classic_pbx", "domain_id": pbx.id, "device": {"column": "Device"}}
    mapping = weekly(imports) | {"role": {"value": temp.id}, "desk": {"value": desk.id}, "sip": sip}
    assert save(imports, "Seasonal", mapping).status_code == 201
    session.delete(temp)
    session.delete(pbx)
    session.commit()

    answer = upload(imports, ["Login", "Mail", "Ext", "Surname", "Device"])
    assert answer["suggested_from"] == "Seasonal"
    assert "role" not in answer["suggested_mapping"]
    assert answer["suggested_mapping"]["desk"] == {"value": desk.id}
    assert answer["suggested_mapping"]["sip"] == {"mode": "classic_pbx", "device": {"column": "Device"}}
    assert answer["suggestion_problems"] == [
        {
            "field": "role",
            "message": f'Role {temp.id} of the saved mapping "Seasonal" no longer exists; choose again.',
        },
        {
            "field": "sip.domain_id",
            "message": f'PBX domain {pbx.id} of the saved mapping "Seasonal" no longer exists; choose again.',
        },
    ]


def test_bad_saved_mappings_are_refused_with_what_is_wrong(imports, client, session):
    blank = save(imports, "  ", weekly(imports))
    assert blank.status_code == 400 and blank.get_json()["error"]["code"] == "invalid_name"
    long = save(imports, "x" * 101, weekly(imports))
    assert long.status_code == 400 and long.get_json()["error"]["code"] == "invalid_name"
    incomplete = save(imports, "Half", {"username": {"column": "Login"}})
    assert incomplete.status_code == 422
    error = incomplete.get_json()["error"]
    assert error["code"] == "invalid_mapping"
    assert {p["field"] for p in error["details"]} == {"email", "extension", "role"}
    # What the parser would let through but the document does not describe is refused too.
    odd = save(imports, "Odd", weekly(imports) | {"username": {"column": "Login", "note": "x"}})
    assert odd.status_code == 422 and odd.get_json()["error"]["code"] == "invalid_mapping"
    assert [p["field"] for p in odd.get_json()["error"]["details"]] == ["username.note"]
    foreign = save(imports, "Theirs", weekly(imports) | {"role": {"value": 987654}})
    assert foreign.status_code == 422
    assert foreign.get_json()["error"]["details"] == [
        {"field": "role", "message": "Role 987654 does not exist."}
    ]
    not_json = client.post("/api/v1/mappings", headers=imports.auth, data="name=x")
    assert not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "invalid_json"
    assert client.delete("/api/v1/mappings/99999999999", headers=imports.auth).status_code == 404
    assert client.get("/api/v1/mappings", headers=imports.auth).get_json() == {"items": []}
