"""Tenants, their admins, and the demo workspace that `make run` seeds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.accounts.auth_types import CONCRETE, AuthType, parse
from shared.accounts.passwords import generate_password, hash_password
from shared.errors import Conflict
from shared.models import MANAGE_USERS, Desk, PbxDomain, Role, SkillGroup, Tenant, User
from shared.settings import Settings

DEMO_ROLES = (("Agent", []), ("Supervisor", ["reports.view"]), ("Admin", [MANAGE_USERS, "reports.view"]))
DEMO_DESKS = ("Sales", "Support", "Retention")
DEMO_SKILL_GROUPS = ("English", "Spanish", "Billing", "VIP")
EXTENSION_BATCH = 500  # numbers looked up per statement
DEMO_PBX_DOMAINS = (("Main PBX", "pbx.demo.example"), ("Backup PBX", "pbx2.demo.example"))


@dataclass(frozen=True)
class SeedResult:
    tenant: Tenant
    admin: User
    generated_password: str | None  # set only when the admin was created just now without one given


def create_tenant(
    session: Session,
    slug: str,
    name: str | None = None,
    extension_min: int = 1000,
    extension_max: int = 9999,
    auth_default: str = AuthType.DISABLED.value,
) -> Tenant:
    """A new tenant with an Admin role that can manage users."""
    slug = slug.strip().lower()
    if parse(auth_default, CONCRETE) is None:
        allowed = ", ".join(kind.value for kind in CONCRETE)
        raise Conflict("invalid_auth_default", f"The authentication default must be one of {allowed}.")
    if session.scalar(select(Tenant).where(Tenant.slug == slug)):
        raise Conflict("tenant_exists", f'A tenant "{slug}" already exists.')
    if not 0 <= extension_min <= extension_max:
        raise Conflict("invalid_range", "The extension range must be low <= high.")
    tenant = Tenant(
        slug=slug,
        name=name or slug,
        extension_min=extension_min,
        extension_max=extension_max,
        auth_default=auth_default,
    )
    session.add(tenant)
    session.flush()
    session.add(Role(tenant_id=tenant.id, name="Admin", permissions=[MANAGE_USERS]))
    session.flush()
    return tenant


def create_admin(
    session: Session, settings: Settings, tenant: Tenant, username: str, email: str, password: str
) -> User:
    """An admin user in the tenant's first role that grants users.manage."""
    roles = session.scalars(select(Role).where(Role.tenant_id == tenant.id).order_by(Role.id)).all()
    role = next((r for r in roles if r.grants(MANAGE_USERS)), None)
    if role is None:
        raise Conflict("no_admin_role", f'Tenant "{tenant.slug}" has no role granting {MANAGE_USERS}.')
    extension = _free_extension(session, tenant)
    user = User(
        tenant_id=tenant.id,
        username=username,
        email=email.lower(),
        role_id=role.id,
        extension=extension,
        password_hash=hash_password(settings, password),
        must_change_password=False,
    )
    session.add(user)
    session.flush()
    return user


def _free_extension(session: Session, tenant: Tenant) -> str:
    """The highest free number of the range (admins take from the top, imports from the bottom),
    looked up a batch at a time through the (tenant_id, extension) index, not the tenant's users."""
    high = tenant.extension_max
    while high >= tenant.extension_min:
        batch = [str(n) for n in range(high, max(high - EXTENSION_BATCH, tenant.extension_min - 1), -1)]
        high -= EXTENSION_BATCH
        query = select(User.extension).where(User.tenant_id == tenant.id, User.extension.in_(batch))
        used = set(session.scalars(query))
        free = next((number for number in batch if number not in used), None)
        if free is not None:
            return free
    raise Conflict("no_free_extension", "The tenant's extension range is full.")


def _ensure(session: Session, model: type, tenant_id: int, name: str, **fields: object) -> None:
    if session.scalar(select(model).where(model.tenant_id == tenant_id, model.name == name)) is None:
        session.add(model(tenant_id=tenant_id, name=name, **fields))


def seed_demo(session: Session, settings: Settings) -> SeedResult:
    """Create the demo tenant and its reference data and admin; running it again changes nothing."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    if tenant is None:
        tenant = Tenant(slug="demo", name="Demo Call Center", extension_min=1000, extension_max=9999)
        session.add(tenant)
        session.flush()
    for name, permissions in DEMO_ROLES:
        _ensure(session, Role, tenant.id, name, permissions=permissions)
    for name in DEMO_DESKS:
        _ensure(session, Desk, tenant.id, name)
    for name in DEMO_SKILL_GROUPS:
        _ensure(session, SkillGroup, tenant.id, name)
    for name, domain in DEMO_PBX_DOMAINS:
        _ensure(session, PbxDomain, tenant.id, name, domain=domain)
    session.flush()
    admin = session.scalar(select(User).where(User.tenant_id == tenant.id, User.username == "admin"))
    generated = None
    if admin is None:
        password = settings.demo_admin_password or generate_password()
        generated = None if settings.demo_admin_password else password
        admin = create_admin(session, settings, tenant, "admin", "admin@demo.example", password)
    return SeedResult(tenant, admin, generated)
