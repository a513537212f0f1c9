"""Helpers for account tests: users made through the domain, and what a login client sends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import select

from shared.accounts.passwords import hash_password
from shared.models import Role, Tenant, User

ADMIN_PASSWORD = "Demo-Admin-Pass-1"  # the demo admin the suite seeds
TEMP_PASSWORD = "Temp-Pass-1234"
NEW_PASSWORD = "My-Own-Password-42"


def add_user(
    session, settings, username: str, role: str = "Admin", password: str = TEMP_PASSWORD, **fields
) -> User:
    """A user of the demo tenant, as an import leaves it (must change its password unless told)."""
    tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
    role_row = session.scalar(select(Role).where(Role.tenant_id == tenant.id, Role.name == role))
    taken = {u for u in session.scalars(select(User.extension).where(User.tenant_id == tenant.id))}
    extension = next(str(n) for n in range(3000, 4000) if str(n) not in taken)
    user = User(
        tenant_id=tenant.id,
        username=username,
        email=f"{username}@demo.example",
        extension=extension,
        role_id=role_row.id,
        password_hash=hash_password(settings, password),
        **({"must_change_password": False} | fields),
    )
    session.add(user)
    session.commit()
    return user


def creds(username: str, password: str = TEMP_PASSWORD, **extra) -> dict:
    return {"tenant": "demo", "username": username, "password": password} | extra


def totp_code(secret: str, steps: int = 0) -> str:
    """The authenticator's code now, or `steps` time steps away (clock skew)."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps))


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def page_login(client, username: str, password: str = TEMP_PASSWORD, next_path: str | None = None):
    data = {"tenant": "demo", "username": username, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login" + (f"?next={next_path}" if next_path else ""), data=data)


def wait_until(condition, timeout: float = 30) -> None:
    """Wait for a state to be reached (checked every 0.1 s), or fail after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the state was not reached in time")
        time.sleep(0.1)
