"""A real SMTP server for the suite (aiosmtpd), and what it received, as a user's inbox shows it."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.secrets import remember_secret

CODE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)


class Mailbox:
    """Messages the server accepted; it can refuse the next few, or go down and come back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self._refuse_next = 0
        self._rejected: str | None = None
        self._hold_for: str | None = None
        self._held = threading.Event()
        self._changed = threading.Condition()
        self._controller = self._start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _start(self) -> Controller:
        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()
        return controller

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self._rejected:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._hold_for is not None and self._hold_for in envelope.rcpt_tos:
            self._held.set()
            while self._hold_for is not None:  # the client waits for our answer meanwhile
                await asyncio.sleep(0.01)
        with self._changed:
            if self._refuse_next:
                self._refuse_next -= 1
                self.refused += 1
                self._changed.notify_all()
                return "451 4.3.0 Mailbox busy, try again later"
            message = message_from_bytes(envelope.content, policy=default)
            self.messages.append(message)  # type: ignore[arg-type]
            self._changed.notify_all()
        return "250 OK"

    def reject_address(self, address: str | None) -> None:
        """Refuse mail to this address for good (550 at RCPT); None: accept every address again."""
        self._rejected = address

    def hold(self, to: str) -> None:
        """Keep the next message to `to` unanswered (after its DATA) until release()."""
        self._held.clear()
        self._hold_for = to

    def wait_held(self, timeout: float = 60) -> None:
        assert self._held.wait(timeout), "no message was held"

    def release(self) -> None:
        self._hold_for = None

    def refuse_next(self, count: int) -> None:
        """Answer the next `count` messages with a temporary failure (451)."""
        with self._changed:
            self._refuse_next = count

    @contextmanager
    def down(self) -> Iterator[None]:
        """Stop listening inside the block (connections are refused), then listen again."""
        self._controller.stop()
        try:
            yield
        finally:
            self._controller = self._start()

    def wait_for(self, to: str, after: int = 0, timeout: float = 30) -> EmailMessage:
        """The first message to `to` among those received after the first `after`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages[after:]:
                    if message["To"] == to:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} within {timeout} s; got {len(self.messages)}")
                self._changed.wait(left)

    def code_for(self, to: str, after: int = 0) -> str:
        """The one-time code in the newest matching message."""
        body = self.wait_for(to, after).get_content()
        found = CODE.search(body)
        assert found, body
        remember_secret(found.group(1))
        return found.group(1)

    def stop(self) -> None:
        self._controller.stop()
