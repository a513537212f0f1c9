"""Logging in as what the import set: password, lock, allowed networks, second factor, new password.

The API runs every step in one call (`log_in`); the login page runs them one page at a
time with the same functions. Nothing here commits: a refused login still counts its
failure, so callers commit before they answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, NoReturn

from sqlalchemy.orm import Session

from shared.accounts import lockout, one_time_codes, page_sessions, recovery_codes, totp
from shared.accounts.auth_types import AuthType, effective_auth_type
from shared.accounts.lockout import Failure
from shared.accounts.networks import check_address
from shared.accounts.passwords import hash_password, verify_password
from shared.accounts.tokens import find_user, password_matches, revoke_user_tokens
from shared.audit import record
from shared.encryption import decrypt, encrypt
from shared.errors import DomainError
from shared.models import MANAGE_USERS, OneTimeCode, RecoveryCode, User, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


class LoginRefused(DomainError):
    """A login that cannot go on (yet); the code says what is missing or wrong."""

    STATUS: ClassVar[dict[str, int]] = {
        "invalid_credentials": 401,
        "code_required": 401,
        "invalid_code": 401,
        "enrolment_required": 403,
        "password_change_required": 403,
        "network_not_allowed": 403,
        "admin_required": 403,
        "account_locked": 423,
        "code_not_sent": 503,
    }
    MESSAGES: ClassVar[dict[str, str]] = {
        "invalid_credentials": "Workspace, username or password is wrong.",
        "code_required": "Send the same request again with the one-time code in `code`.",
        "invalid_code": "The code is wrong, expired or already used. Try the newest code.",
        "enrolment_required": (
            "Add this account to your authenticator app (the secret or the otpauth URI), then send the "
            "same request again with the app's code in `code`."
        ),
        "password_change_required": (
            f"You must choose a new password: send the same request again with `new_password` "
            f"(at least {MIN_PASSWORD_LENGTH} characters, not the current one)."
        ),
        "network_not_allowed": "Your account may not log in from this network address.",
        "admin_required": "The API is for admins (users.manage); log in at /login for your account page.",
        "account_locked": "The account is locked after too many failed logins. Ask an admin to unlock it.",
        "code_not_sent": "We could not email your code. Try again in a minute: a new code will be sent.",
    }

    def __init__(self, code: str, details: Any = None, code_to_send: int | None = None) -> None:
        super().__init__(code, self.MESSAGES[code], details)
        self.status = self.STATUS[code]
        # An emailed code the caller hands to the mail task once it has committed.
        self.code_to_send = code_to_send


class PasswordRejected(DomainError):
    """A new password that does not meet the rules."""

    status = 422


class Step(StrEnum):
    CODE = "code"
    ENROL = "enrol"
    PASSWORD = "password"
    DONE = "done"


class ProofKind(StrEnum):
    """What proved the second factor."""

    TOTP = "totp"  # the authenticator's code
    ENROL = "enrol"  # the first code of an authenticator being enrolled
    RECOVERY = "recovery"  # a recovery code
    EMAIL = "email"  # the code emailed for this login


@dataclass(frozen=True)
class Proof:
    """A second factor that checked out, spent only once the login completes."""

    kind: ProofKind
    step: int | None = None
    row: OneTimeCode | RecoveryCode | None = None


@dataclass(frozen=True)
class Attempt:
    tenant: str
    username: str
    password: str
    address: str | None
    code: str | None = None
    new_password: str | None = None


@dataclass(frozen=True)
class LoggedIn:
    user: User
    recovery_codes: list[str] | None  # shown once, when the authenticator was enrolled just now


def _event(session: Session, user: User, action: str, **details: Any) -> None:
    record(session, user.tenant_id, user.id, action, str(user.id), {"username": user.username, **details})


def check_password(session: Session, settings: Settings, tenant: str, username: str, password: str,
                   address: str | None) -> User:  # fmt: skip
    """The user these credentials open, if not locked and inside its allowed networks."""
    user = find_user(session, tenant, username)
    # The password is checked before anything else, so every refusal a stranger can see is the same.
    if not password_matches(settings, user, password) or user is None:
        if user is not None:
            lockout.count_failure(session, settings, user, Failure.PASSWORD, address)
        raise LoginRefused("invalid_credentials")
    if lockout.is_locked(user):
        _event(session, user, "login.refused", reason="locked", address=address)
        raise LoginRefused("account_locked")
    network = check_address(user.allowed_networks, address)
    if network.invalid:
        log.warning(
            "user=%s has %d stored allowed network(s) that are not networks", user.id, len(network.invalid)
        )
    if not network.allowed:
        _event(session, user, "login.refused", reason="network", address=address)
        raise LoginRefused("network_not_allowed", {"address": address})
    return user


def second_factor(user: User) -> AuthType | None:
    """The second factor the user's login asks for, if any."""
    kind = effective_auth_type(user)
    return kind if kind in (AuthType.EMAIL_OTP, AuthType.GOOGLE_2FA) else None


def enrolled(user: User) -> bool:
    """Whether the user has an authenticator app set up."""
    return user.totp_enrolled_at is not None and user.totp_secret_encrypted is not None


def next_step(user: User, factor_done: bool) -> Step:
    """What the login asks for next."""
    factor = second_factor(user)
    if factor is not None and not factor_done:
        return Step.ENROL if factor is AuthType.GOOGLE_2FA and not enrolled(user) else Step.CODE
    if user.must_change_password:
        return Step.PASSWORD
    return Step.DONE


def enrolment_secret(session: Session, settings: Settings, user: User) -> str:
    """The secret being enrolled: made and stored encrypted on first ask, the same until enrolled."""
    if user.totp_secret_encrypted is None:
        secret = totp.new_secret()
        user.totp_secret_encrypted = encrypt(settings, secret)
        user.totp_enrolled_at = None
        user.totp_last_step = None
        return secret
    return decrypt(settings, user.totp_secret_encrypted)


def enrolment_details(session: Session, settings: Settings, user: User) -> dict[str, str]:
    """What the authenticator app needs: the otpauth URI (the QR code's content) and the secret."""
    secret = enrolment_secret(session, settings, user)
    return {"otpauth_uri": totp.provisioning_uri(secret, user.tenant.slug, user.username), "secret": secret}


def send_code(session: Session, settings: Settings, user: User, address: str | None) -> int:
    """Issue an emailed code; returns its id for the mail task (enqueued after commit)."""
    row = one_time_codes.issue(session, settings, user)
    _event(session, user, "login.code_sent", address=address)
    return row.id


def verify_factor(session: Session, settings: Settings, user: User, code: str, address: str | None) -> Proof:
    """The proof the code gives, or invalid_code (counted toward the lock)."""
    factor = second_factor(user)
    proof: Proof | None = None
    now = utcnow()
    code = code.strip()
    if factor is AuthType.GOOGLE_2FA and user.totp_secret_encrypted is not None:
        secret = decrypt(settings, user.totp_secret_encrypted)
        if not enrolled(user):
            step = totp.matching_step(secret, code, now)
            proof = Proof(ProofKind.ENROL, step=step) if step is not None else None
        else:
            step = totp.matching_step(secret, code, now, after_step=user.totp_last_step)
            if step is not None:
                proof = Proof(ProofKind.TOTP, step=step)
            elif recovery_codes.looks_like_recovery_code(code):
                row = recovery_codes.find_unused(session, user, code)
                proof = Proof(ProofKind.RECOVERY, row=row) if row is not None else None
    elif factor is AuthType.EMAIL_OTP:
        current = one_time_codes.current(session, user)
        if current is not None and one_time_codes.delivery(current) is one_time_codes.Delivery.FAILED:
            raise LoginRefused("code_not_sent")
        row = one_time_codes.matches(session, settings, user, code)
        proof = Proof(ProofKind.EMAIL, row=row) if row is not None else None
    if proof is None:
        lockout.count_failure(session, settings, user, Failure.CODE, address)
        raise LoginRefused("invalid_code")
    return proof


def spend(session: Session, user: User, proof: Proof) -> list[str] | None:
    """Use up the proof; returns new recovery codes when it finished an enrolment."""
    if proof.kind is ProofKind.ENROL:
        user.totp_enrolled_at = utcnow()
        user.totp_last_step = proof.step
        _event(session, user, "account.enrolled", method=AuthType.GOOGLE_2FA.value)
        return recovery_codes.generate(session, user)
    if proof.kind is ProofKind.TOTP:
        user.totp_last_step = proof.step
    elif proof.kind is ProofKind.RECOVERY and isinstance(proof.row, RecoveryCode):
        recovery_codes.use(proof.row)
        _event(session, user, "account.recovery_code_used")
    elif proof.kind is ProofKind.EMAIL and isinstance(proof.row, OneTimeCode):
        one_time_codes.use(proof.row)
    return None


def check_new_password(settings: Settings, user: User, new_password: str) -> None:
    """Refuse a new password that is too short, too long, or the current one."""
    if not isinstance(new_password, str) or len(new_password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(
            "password_too_short", f"The new password must have at least {MIN_PASSWORD_LENGTH} characters."
        )
    if len(new_password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(
            "password_too_long", f"The new password may have at most {MAX_PASSWORD_LENGTH} characters."
        )
    if user.digits_only_password and not (new_password.isascii() and new_password.isdigit()):
        # The import said so: these users type their password on a phone's keypad.
        raise PasswordRejected("password_not_digits", "The new password must be digits only (0-9).")
    if verify_password(settings, user.password_hash, new_password):
        raise PasswordRejected("password_unchanged", "The new password must differ from the current one.")


def set_password(session: Session, settings: Settings, user: User, new_password: str) -> None:
    """Store the user's own new password (checked first); the forced change is then done."""
    check_new_password(settings, user, new_password)
    store_password(session, settings, user, new_password)


def store_password(session: Session, settings: Settings, user: User, new_password: str) -> None:
    """Store a password the user chose (already checked): hashed, and no change is due any more."""
    user.password_hash = hash_password(settings, new_password)
    user.must_change_password = False
    _event(session, user, "account.password_changed")


def change_own_password(session: Session, settings: Settings, user: User, current: str, new_password: str,
                        keep_session: str | None) -> None:  # fmt: skip
    """The account page's change: the current password first; other sessions and tokens end."""
    if not verify_password(settings, user.password_hash, current or ""):
        raise PasswordRejected("wrong_password", "The current password is wrong.")
    set_password(session, settings, user, new_password)
    page_sessions.end_for_user(session, user.id, keep=keep_session)
    revoke_user_tokens(session, user.id)


def complete(session: Session, user: User, address: str | None, via: str) -> None:
    """The login succeeded: the failure count starts again."""
    lockout.clear_failures(user)
    user.last_login_at = utcnow()
    _event(session, user, "login.succeeded", via=via, address=address)


def record_logout(session: Session, user: User, address: str | None) -> None:
    """Note that the user ended their page session."""
    _event(session, user, "logout", address=address)


def ask_for_factor(session: Session, settings: Settings, user: User, address: str | None) -> NoReturn:
    """Refuse with what the second factor needs: enrolment, or a code (emailed now where that is the way)."""
    if next_step(user, factor_done=False) is Step.ENROL:
        raise LoginRefused("enrolment_required", enrolment_details(session, settings, user))
    factor = second_factor(user)
    assert factor is not None
    code_id = send_code(session, settings, user, address) if factor is AuthType.EMAIL_OTP else None
    raise LoginRefused("code_required", {"method": factor.value}, code_to_send=code_id)


def log_in(session: Session, settings: Settings, attempt: Attempt) -> LoggedIn:
    """The API's login: every step in one call; each refusal asks for what is missing."""
    user = check_password(
        session, settings, attempt.tenant, attempt.username, attempt.password, attempt.address
    )
    if not user.role.grants(MANAGE_USERS):
        _event(session, user, "login.refused", reason="admin_required", address=attempt.address)
        raise LoginRefused("admin_required")
    proof = None
    if second_factor(user) is not None:
        if not attempt.code:
            ask_for_factor(session, settings, user, attempt.address)
        proof = verify_factor(session, settings, user, attempt.code, attempt.address)
    if user.must_change_password:
        if not attempt.new_password:
            raise LoginRefused("password_change_required")
        set_password(session, settings, user, attempt.new_password)
    codes = spend(session, user, proof) if proof is not None else None
    complete(session, user, attempt.address, via="api")
    return LoggedIn(user, codes)
