"""Mail tasks: the one-time login code email, retried while the SMTP server refuses or is down."""

from __future__ import annotations

import logging
import smtplib

from celery import Task

from shared import mail
from shared.accounts import one_time_codes
from worker.app import app
from worker.runtime import sessions, settings

log = logging.getLogger(__name__)
# What a mail server that refuses, or is down, raises; smtplib's messages carry no letter content.
SMTP_TROUBLE = (smtplib.SMTPException, OSError)


@app.task(name="mail.send_login_code", bind=True, acks_late=True)
def send_login_code(self: Task, code_id: int) -> str:
    """Email one login code (read from the database by id); mark it failed once retries run out."""
    with sessions().begin() as session:
        letter = one_time_codes.letter(session, settings(), code_id)
    if letter is None:
        return "not needed"
    try:
        mail.send(settings(), letter)
    except SMTP_TROUBLE as exc:
        retries = self.request.retries
        if retries >= settings().smtp_retries:
            log.error(
                "login code mail failed code=%s tries=%d error=%s", code_id, retries + 1, type(exc).__name__
            )
            with sessions().begin() as session:
                one_time_codes.mark_failed(session, code_id)
            return "failed"
        delay = settings().smtp_retry_seconds * 2**retries
        log.warning("login code mail refused code=%s try=%d retry_in=%ds error=%s",
                    code_id, retries + 1, delay, type(exc).__name__)  # fmt: skip
        raise self.retry(countdown=delay, max_retries=None) from None
    with sessions().begin() as session:
        one_time_codes.mark_sent(session, code_id)
    log.info("login code mail sent code=%s", code_id)
    return "sent"
