"""Sending mail over SMTP (SMTP_URL: smtp://[user:password@]host:port, or smtps:// for TLS)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from shared.settings import Settings

TIMEOUT_SECONDS = 20


class Letter(NamedTuple):
    """What the mail task sends (built from the database, never from a task message)."""

    to: str
    subject: str
    body: str
    html: str | None = None  # an HTML alternative of the same text, where the letter has one


def build_message(settings: Settings, letter: Letter) -> EmailMessage:
    """The letter as a plain-text email from MAIL_FROM."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = letter.to
    message["Subject"] = letter.subject
    message["Message-ID"] = make_msgid(domain="dialer.localhost")
    message.set_content(letter.body)
    if letter.html is not None:
        message.add_alternative(letter.html, subtype="html")
    return message


def send(settings: Settings, letter: Letter) -> None:
    """Hand the letter to the SMTP server; raises SMTPException or OSError when it does not take it."""
    with connect(settings) as client:
        client.send_message(build_message(settings, letter))


def connect(settings: Settings) -> smtplib.SMTP:
    """An open, greeted (and where possible encrypted and logged-in) connection to the SMTP server, for
    one letter or many (a chunk of invitations shares one); raises SMTPException or OSError."""
    url = urlsplit(settings.smtp_url)
    host = url.hostname or "127.0.0.1"
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, url.port or 465, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT_SECONDS)
    try:
        client.ehlo()
        if url.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())  # encrypt whenever the server can
            client.ehlo()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
    except BaseException:
        client.close()
        raise
    return client
