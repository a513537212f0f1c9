"""What a log line says of where it comes from: the request id, tenant, job, chunk and worker.

The web binds the request id for each request (web/observability.py); it travels in the Celery
message headers of the tasks the request sends, and on the units of work it adds (work_items),
so a worker's lines for that import carry it too (worker/observability.py). Fields are context
variables, so threads (gunicorn's gthread) and tasks never see each other's.

LOG_FORMAT=text (the default) appends the known fields to the line; LOG_FORMAT=json writes one
JSON object per line with `ts`, `level`, `logger`, `message`, `request_id`, and `tenant`, `job`,
`chunk`, `worker` where known. A line never carries a row's content or a secret: callers log ids
and counts only.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("request_id", "tenant", "job", "chunk", "worker")
_context: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})  # noqa: B039 (never mutated)
# API.md: the client's id is kept when it is a token of at most 64 characters of these.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"


def request_id_from(offered: str | None) -> str:
    """The client's X-Request-ID when it is a short token, else a new one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current() -> dict[str, Any]:
    """The fields bound now (request_id, tenant, job, chunk, worker)."""
    return _context.get()


def request_id() -> str | None:
    """The request id bound now, if any."""
    return _context.get().get("request_id")


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields (None values are left out) for the lines logged inside the block."""
    token = _context.set(_context.get() | {k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Bind fields until `clear()`: for hooks that open and close in separate calls (a request, a task)."""
    _context.set(_context.get() | {k: v for k, v in fields.items() if v is not None})


def clear() -> None:
    """Forget every bound field (the request or task has ended; its thread serves the next)."""
    _context.set({})


# An invitation link's token is a credential: a line naming the path (an access log, a 5xx) shows it cut.
_INVITE_LINK = re.compile(r"(/invite/)[^\s\"'?#]+")


def redact(text: str) -> str:
    """The text with every invitation link's token replaced."""
    return _INVITE_LINK.sub(r"\1[token]", text)


class ContextFilter(logging.Filter):
    """Puts the bound fields on every record, and `context` (their text) for the text format; cuts the
    token out of invitation links."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/invite/" in message:
            record.msg, record.args = redact(message), None
        fields = _context.get()
        record.request_id = fields.get("request_id")
        for name in FIELDS[1:]:
            if name in fields:
                setattr(record, name, fields[name])
        record.context = "".join(f" {name}={fields[name]}" for name in FIELDS if name in fields)
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line with the fields of API.md "Metrics and request ids"."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message)
        # Only the fields of the contract, never whatever a library attached to the record.
        for name in [name for name in log_data if name not in _KEPT]:
            del log_data[name]


_KEPT = {"ts", "level", "logger", "message", *FIELDS, "exc_info", "stack_info"}


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT: `text` or `json`."""
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: int | str = logging.INFO, stream: Any = None) -> None:
    """Send the root logger's lines to stderr (or `stream`) in LOG_FORMAT, with the bound fields."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_log_context", False)]:
        root.removeHandler(old)
    handler._log_context = True  # type: ignore[attr-defined]  # ours: replaced, not doubled, next time
    root.addHandler(handler)
    root.setLevel(level)
