"""GET /api/v1/users, GET /api/v1/users/<id>, POST /api/v1/users/<id>/reset-password, /unlock and
/resend-invitation."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.accounts import invitations
from shared.dialer.users import get_user, list_users, reset_password, unlock_user, user_as_dict
from shared.imports import inviting
from shared.models import ImportJob, User
from web.api import bp
from web.api.imports import publish_status
from web.clients import celery, settings
from web.contract.routes import route
from web.contract.schemas.users import TemporaryPassword, UserAnswer, UserPage, UsersQuery
from web.database import db
from web.security import admin
from worker.slots import offer_slots


@route(bp, "GET", "/users", query=UsersQuery, answer=UserPage)
def users_index(query: UsersQuery) -> Any:
    """A page of the tenant's users, newest first, with search and an import filter."""
    page = list_users(
        db(),
        admin().tenant_id,
        page=query.page,
        per_page=query.per_page,
        q=query.q or None,
        import_id=query.import_id,
    )
    states = invitations.states_of(db(), [u.id for u in page.items])
    return jsonify(
        {
            "items": [user_as_dict(u, states.get(u.id)) for u in page.items],
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
        }
    )


@route(bp, "GET", "/users/<id:user_id>", answer=UserAnswer)
def users_show(user_id: int) -> Any:
    """One user of the tenant."""
    return _answer(get_user(db(), admin().tenant_id, user_id))


def _answer(user: User) -> Any:
    state = invitations.states_of(db(), [user.id]).get(user.id)
    return jsonify(user_as_dict(user, state))


@route(bp, "POST", "/users/<id:user_id>/reset-password", answer=TemporaryPassword)
def users_reset_password(user_id: int) -> Any:
    """A new temporary password, shown in this answer only (also unlocks; ends sessions and tokens)."""
    session = db()
    password = reset_password(session, settings(), admin().tenant_id, admin().id, user_id)
    session.commit()
    _publish_import_of(session.get(User, user_id))  # an invitation it voided leaves the counts
    response = jsonify({"temporary_password": password})
    response.headers["Cache-Control"] = "no-store"
    return response


@route(bp, "POST", "/users/<id:user_id>/unlock", answer=UserAnswer)
def users_unlock(user_id: int) -> Any:
    """Unlock an account locked after failed logins; answers the user."""
    session = db()
    user = unlock_user(session, admin().tenant_id, admin().id, user_id)
    session.commit()
    return _answer(user)


def _publish_import_of(user: User | None) -> None:
    """The user's invitation changed: the readers of its import's status (and a settled stored status)
    hear so."""
    job = db().get(ImportJob, user.import_id) if user is not None and user.import_id else None
    if job is not None and inviting.invites(job):
        publish_status(job)


@route(bp, "POST", "/users/<id:user_id>/resend-invitation", answer=UserAnswer, status=202, errors=(409,))
def users_resend_invitation(user_id: int) -> Any:
    """A new invitation email for a user who has not accepted theirs (the old link stops working).
    409 no_invitations for a user without one waiting."""
    session = db()
    user = get_user(session, admin().tenant_id, user_id)
    units = inviting.resend_to_user(session, admin().id, user)
    session.commit()
    _publish_import_of(user)  # the import's status counts this mail pending now
    offer_slots(celery(), units)
    answer = _answer(user)
    answer.status_code = 202
    return answer
