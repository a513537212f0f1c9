"""Google Authenticator (TOTP, RFC 6238): secrets, the otpauth URI and its QR code, code checks."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

ISSUER = "Dialer"
# One step either side of now: the phone's clock may be up to 30 s off.
SKEW_STEPS = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, tenant_slug: str, username: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=f"{username}@{tenant_slug}", issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code, drawn here (no outside service, no inline style or script)."""
    return segno.make(uri, error="m").svg_inline(
        scale=5, border=4, svgclass="qr", title="QR code", lineclass=None
    )


def matching_step(secret: str, code: str, now: datetime, after_step: int | None = None) -> int | None:
    """The time step the code belongs to (now, or one step off), if later than after_step; else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step if after_step is None or step > after_step else None
    return None
