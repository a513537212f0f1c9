"""The invitation link's page: the invited user chooses a password, then goes on as a login does.

GET shows whose invitation it is and the password rules; POST sets the password, spends the link and
hands over to the login's next step (authenticator enrolment, or an emailed code, where the user's
authentication type asks for one), which ends on the user's page. A link that cannot be used shows why.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request, session
from werkzeug.wrappers import Response

from shared.accounts import invitations, login_flow
from shared.accounts.invitations import InvitationRefused
from shared.accounts.login_flow import PasswordRejected
from shared.accounts.networks import check_address
from shared.imports import progress
from shared.imports.jobs import status_from_db
from shared.models import ImportJob, utcnow
from web.clients import redis, settings
from web.database import db
from web.pages import bp
from web.pages.login import advance, fingerprint
from web.security import client_address, limiter, login_limit

# The token is in the address: no other site may see it in a Referer, no cache may keep the page.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int, dict[str, str]]:
    return render_template(template, **context), status, PRIVATE


def _publish(job_id: str | None) -> None:
    """The import's status counts this invitation differently now: tell its readers."""
    job = db().get(ImportJob, job_id) if job_id else None
    if job is not None:
        progress.publish(redis(), status_from_db(db(), job), job.tenant_id)


def _refused(refused: InvitationRefused, job_id: str | None = None) -> tuple[str, int, dict[str, str]]:
    db().commit()  # an expiry seen now is recorded
    if refused.code == "invitation_expired":
        _publish(job_id)
    return _page("invitation_refused.html", refused.status, error=refused.message, code=refused.code)


@bp.route("/invite/<path:token>", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def invitation(token: str) -> Any:
    """Choose a password from an emailed invitation."""
    try:
        opened = invitations.open_link(db(), token)
    except InvitationRefused as refused:
        return _refused(refused, refused.job_id)
    user = opened.user
    context = {
        "user": user,
        "tenant": user.tenant,
        "min_length": login_flow.MIN_PASSWORD_LENGTH,
        "digits_only": user.digits_only_password,
        "expires_at": opened.invitation.expires_at,
    }
    if not check_address(user.allowed_networks, client_address()).allowed:
        return _page("invitation.html", 403, error="Your account may not be used from this network address.",
                     **context)  # fmt: skip
    if request.method == "GET":
        return _page("invitation.html", **context)
    new, again = request.form.get("new_password", ""), request.form.get("confirm_password", "")
    if new != again:
        return _page("invitation.html", 422, error="The two passwords differ.", **context)
    try:
        user = invitations.accept(db(), settings(), token, new, client_address())
    except InvitationRefused as refused:
        return _refused(refused)
    except PasswordRejected as rejected:
        return _page("invitation.html", rejected.status, error=rejected.message, **context)
    db().commit()
    _publish(opened.invitation.job_id)
    return _continue_as_login(user)


def _continue_as_login(user: Any) -> Response:
    """Start a login that has its password step done: the second factor, then the user's page."""
    session.clear()  # whoever was logged in in this browser before is not any more
    session["login"] = {
        "user_id": user.id,
        "started": utcnow().isoformat(),
        "pw": fingerprint(user),
        "factor_done": False,
        "next": None,
    }
    response = advance(user)
    response.headers.update(PRIVATE)
    return response
