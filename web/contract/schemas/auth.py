"""API.md "Authentication" and "Accounts": tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from web.contract.bases import Answer, Name, Request, Text


class TokenRequest(Request):
    tenant: Name = Field(description="the workspace, e.g. demo")
    username: Name
    password: Annotated[str, StringConstraints(min_length=1)]
    code: Text | None = Field(
        default=None, description="one-time code (authenticator, email) or a recovery code, when asked"
    )
    new_password: str | None = Field(
        default=None, description="when asked (password_change_required): at least 12 characters"
    )


class Token(Answer):
    token: str
    expires_at: datetime
    recovery_codes: list[str] | None = Field(
        default=None, description="only when this call finished an authenticator's enrolment; shown once"
    )
