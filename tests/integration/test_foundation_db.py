"""The data model on real SQLite and PostgreSQL: uniqueness, seeding."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.dialer.tenants import create_tenant, seed_demo
from shared.models import Desk, PbxDomain, Role, SkillGroup, Tenant, User


def _user(session, tenant: Tenant, username: str, email: str, extension: str) -> User:
    role = session.scalar(select(Role).where(Role.tenant_id == tenant.id))
    user = User(
        tenant_id=tenant.id,
        username=username,
        email=email,
        extension=extension,
        role_id=role.id,
        password_hash="x",
    )
    session.add(user)
    session.flush()
    return user


@pytest.mark.parametrize(
    ("username", "email", "extension"),
    [
        ("BOB", "other@x.example", "2001"),  # username differs only in case
        ("other", "Bob@X.Example", "2002"),  # email differs only in case
        ("other2", "other2@x.example", "2000"),  # same extension
    ],
)
def test_database_refuses_case_insensitive_duplicates(session, username, email, extension):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    _user(session, tenant, "bob", "bob@x.example", "2000")
    with pytest.raises(IntegrityError):
        _user(session, tenant, username, email, extension)


def test_same_names_are_fine_in_another_tenant(session):
    demo = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    other = create_tenant(session, "other")
    _user(session, demo, "bob", "bob@x.example", "2000")
    _user(session, other, "BOB", "bob@x.example", "2000")
    session.commit()
    assert (
        session.scalar(select(func.count()).select_from(User).where(func.lower(User.username) == "bob")) == 2
    )


def test_seed_demo_is_idempotent(session, settings):
    def counts() -> dict[str, int]:
        return {
            m.__name__: session.scalar(select(func.count()).select_from(m))
            for m in (Tenant, Role, Desk, SkillGroup, PbxDomain, User)
        }

    before = counts()
    admin_hash = session.scalar(select(User.password_hash).where(User.username == "admin"))
    again = seed_demo(session, settings)
    session.commit()
    assert counts() == before
    assert again.generated_password is None
    assert session.scalar(select(User.password_hash).where(User.username == "admin")) == admin_hash
    assert before == {"Tenant": 1, "Role": 3, "Desk": 3, "SkillGroup": 4, "PbxDomain": 2, "User": 1}
