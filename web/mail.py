"""Handing emailed login codes to the mail task (after the code is committed)."""

from __future__ import annotations

import logging

from shared.accounts import one_time_codes
from shared.errors import Unavailable
from web.clients import celery
from web.database import sessions

log = logging.getLogger(__name__)


def send_login_code(code_id: int) -> None:
    """Enqueue the code's email; when the queue does not answer, void the code and say to try again."""
    try:
        celery().send_task("mail.send_login_code", args=[code_id])
    except Exception as exc:  # any broker failure: the code would never arrive
        log.warning("could not enqueue login code mail code=%s error=%s", code_id, type(exc).__name__)
        with sessions().begin() as session:
            one_time_codes.mark_failed(session, code_id)
        raise Unavailable(
            "mail_unavailable", "We could not send your code just now. Try again in a minute."
        ) from None
