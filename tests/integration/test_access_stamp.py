"""Which committed changes renew the access stamp, on both databases (real Redis).

A change that can end someone's access renews it; everyday writes that cannot (a token's
last use, the tenant's row lock, new users) leave it, so the web's token cache
keeps its entries through an import.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import select, update

from shared.accounts import access_stamp
from shared.accounts.lockout import unlock
from shared.accounts.tokens import caller_for_token, issue_token, revoke_token, revoke_user_tokens
from shared.imports.allocation import lock_tenant
from shared.models import ApiToken, Role, User, utcnow
from tests.support.accounts import add_user


@pytest.fixture
def stamp(base_settings, session):
    redis = Redis.from_url(base_settings.redis_url)
    access_stamp.renew(redis)

    def read() -> str | None:
        return access_stamp.current(redis)

    return read


@pytest.fixture
def admin(session, settings) -> User:
    return add_user(session, settings, "stella")


def renews(stamp, change) -> bool:
    before = stamp()
    change()
    return stamp() != before


def test_revoking_tokens_renews_the_stamp(session, settings, admin, stamp):
    token, _ = issue_token(session, settings, admin)
    session.commit()
    assert renews(stamp, lambda: (revoke_token(session, token), session.commit()))
    issue_token(session, settings, admin)
    session.commit()
    assert renews(stamp, lambda: (revoke_user_tokens(session, admin.id), session.commit()))


def test_locking_a_user_changing_a_role_or_deleting_a_user_renews_it(session, settings, admin, stamp):
    def lock() -> None:
        admin.locked_at = utcnow()
        session.commit()

    assert renews(stamp, lock)
    assert renews(stamp, lambda: (unlock(session, admin, None), session.commit()))
    role = session.get(Role, admin.role_id)

    def narrow() -> None:
        role.permissions = []
        session.commit()

    assert renews(stamp, narrow)
    assert renews(stamp, lambda: (session.delete(admin), session.commit()))


def test_a_bulk_update_of_users_renews_it(session, admin, stamp):
    def bulk() -> None:
        session.execute(update(User).where(User.id == admin.id).values(session_timeout_minutes=5))
        session.commit()

    assert renews(stamp, bulk)


def test_everyday_writes_leave_it(session, settings, admin, stamp):
    token, _ = issue_token(session, settings, admin)
    session.commit()
    session.execute(
        update(ApiToken)
        .values(last_used_at=utcnow() - timedelta(minutes=2))
        .execution_options(**{access_stamp.NEUTRAL: True})
    )
    session.commit()
    before = stamp()
    found = caller_for_token(session, settings, token)
    assert found is not None and found.touched  # its last use was due and is written
    session.commit()
    lock_tenant(session, admin.tenant_id)
    session.commit()
    add_user(session, settings, "newcomer")  # a new user ends nobody's access
    assert stamp() == before


def test_a_change_rolled_back_renews_nothing(sessions, admin, stamp):
    before = stamp()
    with sessions() as other:
        other.get(User, admin.id).locked_at = utcnow()
        other.flush()
        other.rollback()
    assert stamp() == before
    assert sessions().scalar(select(User.locked_at).where(User.id == admin.id)) is None
