"""The Users table: listing, searching, one-off creation and password resets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, union
from sqlalchemy.orm import Session, selectinload

from shared.accounts import invitations, lockout, page_sessions
from shared.accounts.auth_types import effective_auth_type
from shared.accounts.passwords import generate_password, hash_password
from shared.accounts.tokens import revoke_user_tokens
from shared.audit import record
from shared.errors import DomainError, NotFound
from shared.mapping.fields import FIELDS
from shared.models import TenantUserCount, User
from shared.settings import Settings
from shared.timestamps import iso

MAX_PER_PAGE = 200
SEARCHABLE = [f for f in FIELDS if f.searchable]
TRIGRAM = 3  # shorter text has no trigram: the search then matches the start of a field
SEPARATOR_CHAR = "\x1f"  # between the fields in SEARCH_TEXT, so no match spans two fields
# The searchable fields as one lower-case text, each after the separator: what the trigram index
# of migration 0008 holds. Spelled as SQL so the index and the query parse to the same expression.
SEARCH_TEXT = (
    "(" + " || ".join(f"chr(31) || lower(coalesce(users.{f.attribute}, ''))" for f in SEARCHABLE) + ")"
)


@dataclass(frozen=True)
class Page:
    items: list[User]
    total: int
    page: int
    per_page: int


def user_as_dict(user: User, invitation: str | None = None) -> dict[str, Any]:
    """The JSON shape of a user in the Users table (never the hash), with the state of the user's
    invitation where they were invited (shared/accounts/invitations.py: states_of)."""
    return (
        {"id": user.id}
        | {f.attribute: f.read(user) for f in FIELDS}
        | {
            "sip_mode": user.sip_mode,
            "pbx_domain_id": user.pbx_domain_id,
            "sip_device": user.sip_device,
            "sip_uri": user.sip_uri,
            "auth_type": user.auth_type,
            "effective_auth_type": effective_auth_type(user).value,
            "second_factor_enrolled": user.totp_enrolled_at is not None,
            "locked": user.locked_at is not None,
            "failed_logins": user.failed_logins or 0,
            "last_login_at": iso(user.last_login_at),
            "allowed_networks": user.allowed_networks,
            "session_timeout_minutes": user.session_timeout_minutes,
            "lock_after_failed_logins": user.lock_after_failed_logins,
            "must_change_password": user.must_change_password,
            "created_at": iso(user.created_at),
            "import_id": user.import_id,
            "invitation": invitation,
        }
    )


def list_users(
    session: Session,
    tenant_id: int,
    page: int = 1,
    per_page: int = 50,
    q: str | None = None,
    import_id: str | None = None,
) -> Page:
    """A page of the tenant's users, newest first, filtered by text and import.

    Every read is bounded by the page or by the matches, never by the tenant: the total is the
    tenant's count row (or the matches the search index found), the page's ids come from the
    (tenant_id, id) index read from whichever end is nearer, so the last page costs what the
    first does, and only the page's users are loaded.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise DomainError("invalid_page", f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}.")
    where: list[ColumnElement[bool]] = [User.tenant_id == tenant_id]
    if q and q.strip():
        where.append(search_condition(session, tenant_id, q))
    if import_id:
        where.append(User.import_id == import_id)
    if len(where) == 1:  # the whole tenant: its count row
        count = select(TenantUserCount.users).where(TenantUserCount.tenant_id == tenant_id)
        total = session.scalar(count) or 0
    else:  # bounded by the matches (search index) or the file (import_id index)
        total = session.scalar(select(func.count(User.id)).where(*where)) or 0
    skip = (page - 1) * per_page
    if skip >= total:
        return Page([], total, page, per_page)
    ids = select(User.id).where(*where)
    from_end = total - skip - per_page  # rows after this page, in newest-first order
    if from_end < skip:  # nearer the oldest end: read ascending from there
        ids = ids.order_by(User.id.asc()).offset(max(from_end, 0)).limit(per_page + min(from_end, 0))
    else:
        ids = ids.order_by(User.id.desc()).offset(skip).limit(per_page)
    wanted = list(session.scalars(ids))
    items = session.scalars(
        select(User)
        .where(User.id.in_(wanted))
        .options(
            selectinload(User.skill_groups),
            selectinload(User.role),
            selectinload(User.desk),
            selectinload(User.tenant),
        )
        .order_by(User.id.desc())
    ).all()
    return Page(list(items), total, page, per_page)


def search_condition(session: Session, tenant_id: int, q: str) -> ColumnElement[bool]:
    """Users whose searchable fields match `q`, case-insensitive, through an index.

    PostgreSQL: any field containing the text (3 characters or more), else any field starting
    with it, both answered by one trigram index over the fields (migration 0008). SQLite has no
    trigram index: any field starting with the text, answered by the fields' expression indexes.
    """
    text = q.strip().lower().replace(SEPARATOR_CHAR, "")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if session.get_bind().dialect.name == "postgresql":
        # The trigram index is over SEARCH_TEXT; the query must spell the same expression.
        pattern = f"%{escaped}%" if len(text) >= TRIGRAM else f"%{SEPARATOR_CHAR}{escaped}%"
        return literal_column(SEARCH_TEXT).like(pattern, escape="\\")
    # A range over lower(field) is what SQLite's expression indexes answer (LIKE would scan); one
    # SELECT per field, so each takes its own index even before ANALYZE gave the planner figures.
    return User.id.in_(union(*(_starts_with(tenant_id, f.attribute, text) for f in SEARCHABLE)))


def _starts_with(tenant_id: int, attribute: str, text: str) -> Select[tuple[int]]:
    column = func.lower(getattr(User, attribute))
    return select(User.id).where(User.tenant_id == tenant_id, column.between(text, text + "\U0010ffff"))


def get_user(session: Session, tenant_id: int, user_id: int) -> User:
    """One user of the tenant; another tenant's answers NotFound."""
    user = session.get(User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"User {user_id}")
    return user


def reset_password(
    session: Session, settings: Settings, tenant_id: int, actor_id: int | None, user_id: int
) -> str:
    """Give the user a new temporary password; returned once, stored only hashed.

    The user's sessions and tokens end and a lock is lifted, in the same transaction.
    """
    user = get_user(session, tenant_id, user_id)
    password = generate_password(user.digits_only_password)
    user.password_hash = hash_password(settings, password)
    user.must_change_password = True
    invitations.void_for_users(session, [user.id])  # the temporary password replaces an open invitation
    lockout.unlock(session, user, actor_id)
    page_sessions.end_for_user(session, user.id)
    revoke_user_tokens(session, user.id)
    record(session, tenant_id, actor_id, "user.password_reset", str(user.id), {"username": user.username})
    return password


def unlock_user(session: Session, tenant_id: int, actor_id: int | None, user_id: int) -> User:
    """Lift the user's lock (and reset the failure count)."""
    user = get_user(session, tenant_id, user_id)
    lockout.unlock(session, user, actor_id)
    return user
