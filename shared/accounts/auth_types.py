"""Authentication types: the user's own, else the role's default, else the tenant's."""

from __future__ import annotations

from enum import StrEnum

from shared.models import Role, User


class AuthType(StrEnum):
    DEFAULT = "default"
    DISABLED = "disabled"
    EMAIL_OTP = "email_otp"
    GOOGLE_2FA = "google_2fa"


LABELS = {
    AuthType.DEFAULT: "Default from Role/Tenant",
    AuthType.DISABLED: "Disabled - login without 2FA",
    AuthType.EMAIL_OTP: "Email - with one-time code",
    AuthType.GOOGLE_2FA: "Google 2FA App - with one-time code",
}
# What a role or tenant may default to ("default" on a role means: the tenant's).
CONCRETE = (AuthType.DISABLED, AuthType.EMAIL_OTP, AuthType.GOOGLE_2FA)


def effective_auth_type(user: User) -> AuthType:
    """The type that applies at the user's login."""
    for candidate in (user.auth_type, user.role.auth_default, user.tenant.auth_default):
        if candidate in CONCRETE:
            return AuthType(candidate)
    return AuthType.DISABLED


def role_default(role: Role) -> AuthType:
    """The role's own default, DEFAULT meaning the tenant's."""
    return AuthType(role.auth_default) if role.auth_default in CONCRETE else AuthType.DEFAULT


def parse(value: object, allowed: tuple[AuthType, ...]) -> AuthType | None:
    """The AuthType named by value when it is one of allowed, else None."""
    return next((kind for kind in allowed if value == kind.value), None)
