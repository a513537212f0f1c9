"""Invitations: a single-use emailed link with which a user created without a password sets their own.

The token exists in plain only in the worker that mails it (made just before the mail goes) and in the
user's inbox; the database keeps its SHA-256. A link works once, until INVITATION_HOURS after it was
sent, and only while it is the user's newest: a resend, an admin's password reset, an undo or the
user's deletion voids it. Accepting sets the password under the forced change's rules and goes on as
a login does (shared/accounts/login_flow.py).
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.accounts import login_flow
from shared.accounts.passwords import PASSWORDLESS
from shared.audit import record
from shared.errors import DomainError
from shared.mail import Letter
from shared.models import Invitation, InvitationState, User, utcnow
from shared.settings import Settings
from shared.timestamps import aware

# What the account has instead of a password hash until the invitation is accepted.
NO_PASSWORD = PASSWORDLESS
# secrets.token_urlsafe(32): 43 URL-safe characters. Anything else is refused before any look-up.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
OPEN = (InvitationState.PENDING, InvitationState.SENDING, InvitationState.SENT, InvitationState.FAILED)


class InvitationRefused(DomainError):
    """A link that cannot be used; the message says why and what to do."""

    status = 410
    job_id: str | None = None


MESSAGES = {
    "invitation_invalid": (
        404,
        "This invitation link is not valid. Check that you opened the whole link from the email; if it still "
        "fails, the invitation was withdrawn: ask your administrator for a new one.",
    ),
    "invitation_used": (410, "This invitation was already used. Log in with the password you chose."),
    "invitation_replaced": (
        410,
        "This invitation link was replaced by a newer one. Use the link in the most recent email.",
    ),
    "invitation_expired": (410, "This invitation has expired. Ask your administrator to send a new one."),
}


def refused(code: str) -> InvitationRefused:
    status, message = MESSAGES[code]
    error = InvitationRefused(code, message)
    error.status = status
    return error


def digest(token: str) -> str:
    """What the database keeps of a link's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and its digest."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def link(settings: Settings, token: str) -> str:
    return f"{settings.public_base}/invite/{token}"


def expired(invitation: Invitation, now: datetime | None = None) -> bool:
    """A sent invitation whose link's time is over (accepted or void ones never expire)."""
    return (
        invitation.state in OPEN
        and invitation.expires_at is not None
        and aware(invitation.expires_at) <= (now or utcnow())
    )


def shown_state(invitation: Invitation, now: datetime | None = None) -> str:
    """The state an admin sees: pending (not sent yet), sent, failed, accepted or expired."""
    if expired(invitation, now):
        return "expired"
    if invitation.state == InvitationState.SENDING:
        return "pending"
    return invitation.state.value


def invite(
    session: Session, users: Sequence[tuple[User, int]], job_id: str | None, fresh: bool = False
) -> None:
    """A new invitation for each (user, chunk), waiting for its mail; the users' open ones are void from
    now (one statement; none to void for `fresh` users, created just now)."""
    if not fresh:
        void_for_users(session, [user.id for user, _chunk in users])
    now = utcnow()
    session.add_all(
        Invitation(
            tenant_id=user.tenant_id,
            user_id=user.id,
            job_id=job_id,
            chunk=chunk,
            state=InvitationState.PENDING,
            attempts=0,
            created_at=now,
        )
        for user, chunk in users
    )


def void_for_users(session: Session, user_ids: list[int]) -> int:
    """Void the users' invitations not accepted yet (a resend, a password reset); returns how many."""
    return (
        session.execute(
            update(Invitation)
            .where(Invitation.user_id.in_(user_ids), Invitation.state.in_(OPEN))
            .values(state=InvitationState.VOID, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


def current(session: Session, user_id: int) -> Invitation | None:
    """The user's newest invitation that is not void."""
    return session.scalar(
        select(Invitation)
        .where(Invitation.user_id == user_id, Invitation.state != InvitationState.VOID)
        .order_by(Invitation.id.desc())
        .limit(1)
    )


def states_of(session: Session, user_ids: list[int]) -> dict[int, str]:
    """Each listed user's invitation as the Users table shows it (users without one are left out)."""
    if not user_ids:
        return {}
    now = utcnow()
    found: dict[int, str] = {}
    rows = session.scalars(
        select(Invitation)
        .where(Invitation.user_id.in_(user_ids), Invitation.state != InvitationState.VOID)
        .order_by(Invitation.id)
    )
    for invitation in rows:  # the newest last: it wins
        found[invitation.user_id] = shown_state(invitation, now)
    return found


@dataclass(frozen=True)
class Opened:
    """A link that may be used now: its invitation and user."""

    invitation: Invitation
    user: User


def open_link(session: Session, token: str) -> Opened:
    """The invitation a link's token opens, or InvitationRefused saying why not."""
    if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
        raise refused("invitation_invalid")
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == digest(token)))
    if invitation is None:
        raise refused("invitation_invalid")
    if invitation.state == InvitationState.ACCEPTED:
        raise refused("invitation_used")
    if invitation.state == InvitationState.VOID:
        raise refused("invitation_replaced")
    if expired(invitation):
        note_expired(session, invitation)
        error = refused("invitation_expired")
        error.job_id = invitation.job_id  # whose status counts it expired now
        raise error
    return Opened(invitation, invitation.user)


def accept(session: Session, settings: Settings, token: str, password: str, address: str | None) -> User:
    """Set the user's own password from the link (the forced change's rules) and spend the link."""
    opened = open_link(session, token)
    user = opened.user
    login_flow.check_new_password(settings, user, password)
    login_flow.store_password(session, settings, user, password)
    opened.invitation.state = InvitationState.ACCEPTED
    opened.invitation.accepted_at = utcnow()
    opened.invitation.next_attempt_at = None
    event(session, opened.invitation, "invitation.accepted", address=address)
    return user


def note_expired(session: Session, invitation: Invitation) -> None:
    """Record the expiry once in the audit (at the first look after it: a visit, or the purge)."""
    if invitation.expiry_recorded_at is None:
        invitation.expiry_recorded_at = utcnow()
        event(session, invitation, "invitation.expired")


def record_expired(session: Session, limit: int) -> set[str]:
    """Audit the invitations whose time ran out since the last run (the purge calls it); returns their
    imports (whose statuses now count them expired)."""
    now = utcnow()
    found = session.scalars(
        select(Invitation)
        .where(
            Invitation.state.in_(OPEN),
            Invitation.expires_at <= now,
            Invitation.expiry_recorded_at.is_(None),
        )
        .limit(limit)
    ).all()
    for invitation in found:
        note_expired(session, invitation)
    return {invitation.job_id for invitation in found if invitation.job_id}


def event(session: Session, invitation: Invitation, action: str, **details: Any) -> None:
    """An audit event about the invitation: whose, which import; never its token."""
    record(
        session, invitation.tenant_id, None, action, str(invitation.user_id),
        {"invitation": invitation.id, "import": invitation.job_id, **details},
    )  # fmt: skip


def letter(settings: Settings, user: User, token: str, expires_at: datetime) -> Letter:
    """The invitation email, plain text and HTML: the workspace, the link, when it expires, and what to
    do when the mail was not expected."""
    url = link(settings, token)
    tenant = user.tenant.name
    name = user.first_name or user.username
    until = aware(expires_at).strftime("%Y-%m-%d %H:%M UTC")
    hours = settings.invitation_hours
    body = (
        f"Hello {name},\n\n"
        f"An account was created for you in the {tenant} workspace ({user.tenant.slug}) of the dialer.\n"
        f"Your username is {user.username}.\n\n"
        f"Choose your password here (the link works once):\n\n    {url}\n\n"
        f"The link expires on {until} ({hours} hours after this email was sent).\n\n"
        "If you did not expect this email, ignore it: no one can log in to the account until the link is\n"
        "used. Tell your administrator if you keep receiving such emails.\n"
    )
    e = html.escape
    page = (
        f"<p>Hello {e(name)},</p>"
        f"<p>An account was created for you in the <strong>{e(tenant)}</strong> workspace "
        f"({e(user.tenant.slug)}) of the dialer. Your username is <strong>{e(user.username)}</strong>.</p>"
        f'<p><a href="{e(url)}">Choose your password</a> (the link works once).</p>'
        f"<p>The link expires on {e(until)} ({hours} hours after this email was sent).</p>"
        "<p>If you did not expect this email, ignore it: no one can log in to the account until the link "
        "is used. Tell your administrator if you keep receiving such emails.</p>"
    )
    return Letter(to=user.email, subject=f"Your {tenant} account: choose your password", body=body, html=page)


def valid_for(settings: Settings) -> timedelta:
    return timedelta(hours=settings.invitation_hours)
