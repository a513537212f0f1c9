"""The foundation's HTTP contract: tokens, reference data, users, isolation, health."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.accounts.passwords import hash_password, verify_password
from shared.dialer.tenants import create_admin, create_tenant
from shared.models import Desk, PbxDomain, Role, SkillGroup, Tenant, User
from tests.support.accounts import ADMIN_PASSWORD


def test_token_for_the_demo_admin(client):
    resp = client.post(
        "/api/v1/auth/token", json={"tenant": "demo", "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert len(body["token"]) >= 32 and body["expires_at"]


@pytest.mark.parametrize(
    "payload",
    [
        {"tenant": "demo", "username": "admin", "password": "wrong"},
        {"tenant": "nope", "username": "admin", "password": ADMIN_PASSWORD},
        {"tenant": "demo", "username": "ghost", "password": ADMIN_PASSWORD},
    ],
)
def test_bad_credentials_answer_401(client, payload):
    resp = client.post("/api/v1/auth/token", json=payload)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "invalid_credentials"


def test_missing_fields_answer_400_naming_them(client):
    resp = client.post("/api/v1/auth/token", json={"tenant": "demo"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["details"] == {"missing": ["username", "password"]}


def test_api_without_token_answers_401(client):
    assert client.get("/api/v1/roles").status_code == 401
    assert client.get("/api/v1/users", headers={"Authorization": "Bearer made-up"}).status_code == 401


def test_non_admin_gets_no_api_token(client, session, settings):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    agent = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
    session.add(
        User(
            tenant_id=tenant.id,
            username="agent1",
            email="agent1@x.example",
            extension="1500",
            role_id=agent.id,
            password_hash=hash_password(settings, "Agent-Pass-1"),
        )
    )
    session.commit()
    creds = {"tenant": "demo", "username": "agent1", "password": "Agent-Pass-1"}
    refused = client.post("/api/v1/auth/token", json=creds)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "admin_required"
    wrong = client.post("/api/v1/auth/token", json=creds | {"password": "wrong"})
    assert wrong.get_json()["error"]["code"] == "invalid_credentials"


def test_reference_data_lists_the_demo_data(client, auth):
    roles = client.get("/api/v1/roles", headers=auth).get_json()["items"]
    assert [r["name"] for r in roles] == ["Agent", "Supervisor", "Admin"]
    assert all(isinstance(r["id"], int) for r in roles)
    assert [d["name"] for d in client.get("/api/v1/desks", headers=auth).get_json()["items"]] == [
        "Sales",
        "Support",
        "Retention",
    ]
    assert len(client.get("/api/v1/skill-groups", headers=auth).get_json()["items"]) == 4
    domains = client.get("/api/v1/pbx-domains", headers=auth).get_json()["items"]
    assert domains[0]["domain"] == "pbx.demo.example"


def test_users_list_search_and_pagination(client, auth, session, settings):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    role = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == "Agent"))
    for i in range(7):
        session.add(
            User(
                tenant_id=tenant.id,
                username=f"agent{i}",
                email=f"a{i}@x.example",
                extension=str(1100 + i),
                role_id=role.id,
                password_hash="x",
            )
        )
    session.commit()
    body = client.get("/api/v1/users?per_page=3&page=2", headers=auth).get_json()
    assert body["total"] == 8 and body["page"] == 2 and body["per_page"] == 3 and len(body["items"]) == 3
    found = client.get("/api/v1/users?q=AGENT3", headers=auth).get_json()
    assert [u["username"] for u in found["items"]] == ["agent3"]
    assert set(found["items"][0]) >= {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "extension",
        "role_id",
        "desk_id",
        "skill_group_ids",
        "sip_mode",
        "auth_type",
        "created_at",
        "import_id",
    }
    assert "password_hash" not in found["items"][0]
    assert client.get("/api/v1/users?page=x", headers=auth).status_code == 400


def test_reset_password_shows_a_new_password_once(client, auth, session, settings):
    admin = session.scalar(select(User).where(User.username == "admin"))
    resp = client.post(f"/api/v1/users/{admin.id}/reset-password", headers=auth)
    assert resp.status_code == 200
    password = resp.get_json()["temporary_password"]
    session.expire_all()
    stored = session.get(User, admin.id)
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(settings, stored.password_hash, password)
    assert stored.must_change_password is True


def test_another_tenants_resources_answer_404(client, auth, session, settings):
    other = create_tenant(session, "other")
    ids = {
        "roles": session.scalar(select(Role.id).where(Role.tenant_id == other.id)),
    }
    for model, kind in ((Desk, "desks"), (SkillGroup, "skill-groups")):
        entity = model(tenant_id=other.id, name="Theirs")
        session.add(entity)
        session.flush()
        ids[kind] = entity.id
    domain = PbxDomain(tenant_id=other.id, name="Theirs", domain="pbx.other.example")
    session.add(domain)
    session.flush()
    ids["pbx-domains"] = domain.id
    their_admin = create_admin(session, settings, other, "boss", "boss@other.example", "Other-Pass-1")
    session.commit()
    for kind, entity_id in ids.items():
        resp = client.get(f"/api/v1/{kind}/{entity_id}", headers=auth)
        assert resp.status_code == 404, kind
        assert resp.get_json()["error"]["code"] == "not_found"
        assert all(
            item["id"] != entity_id
            for item in client.get(f"/api/v1/{kind}", headers=auth).get_json()["items"]
        )
    assert client.get(f"/api/v1/users/{their_admin.id}", headers=auth).status_code == 404
    assert client.post(f"/api/v1/users/{their_admin.id}/reset-password", headers=auth).status_code == 404
    listed = client.get("/api/v1/users?q=boss", headers=auth).get_json()
    assert listed["total"] == 0


def test_openapi_document_lists_the_contract(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/v1/auth/token",
        "/api/v1/roles",
        "/api/v1/users",
        "/api/v1/uploads",
        "/api/v1/imports",
        "/api/v1/imports/{job_id}/events",
        "/api/v1/imports/{job_id}/success.csv",
        "/api/v1/uploads/{upload_id}",
        "/api/v1/users/{user_id}/unlock",
        "/api/v1/imports/{job_id}/undo",
        "/api/v1/imports/{job_id}/regenerate-passwords",
        "/api/v1/imports/{job_id}/rows",
        "/api/v1/imports/{job_id}/rows/{row}/check",
        "/api/v1/imports/{job_id}/retry",
        "/api/v1/mappings",
        "/api/v1/mappings/{mapping_id}",
    ):
        assert path in doc["paths"], path
    assert {"post", "delete"} <= set(doc["paths"]["/api/v1/auth/token"])
    assert "patch" in doc["paths"]["/api/v1/roles/{role_id}"]


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_names_the_worker_it_saw(client, worker):
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert worker.name in resp.get_json()["workers"]


def test_readyz_fails_when_redis_is_down(clean_db, base_settings):
    from web import create_app

    app = create_app(base_settings.with_(redis_url="redis://127.0.0.1:1/0"))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert "redis" in body["missing"] and body["checks"]["database"] == "ok"
    assert "redis" in body["error"]["message"]


def test_expired_tokens_are_refused_and_purged(client, token, session):
    from datetime import timedelta

    from shared.accounts.tokens import purge_expired_tokens
    from shared.models import ApiToken, utcnow

    row = session.scalar(select(ApiToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert client.get("/api/v1/roles", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert purge_expired_tokens(session) == 1
    session.commit()
    assert session.scalar(select(ApiToken)) is None
