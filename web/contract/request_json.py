"""JSON request bodies as the document reads them: bounded in size and depth before the parser
sees them, and integral numbers read as integers.

The standard library's parser recurses once per nesting level: a body of 100,000 `[` raises
RecursionError, a 500. Request bodies are measured first (a regular expression skips the
strings, then the brackets are counted), so such a body is a 400 that says why.

JSON Schema counts 1096.0 as an integer, and the OpenAPI document promises integers there; Python
would read a float that every integer field then refused. A number with a zero fraction is read as
the integer it is (no field of the API takes a fraction).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from shared.errors import DomainError

MAX_DEPTH = 32  # a mapping is 4 levels deep
MAX_BYTES = 1024 * 1024
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class BodyTooLarge(DomainError):
    status = 413


def check_bounds(data: str | bytes) -> None:
    """Raise a DomainError when the JSON text is larger or deeper than a request may be."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise BodyTooLarge("body_too_large", f"A JSON body may be at most {MAX_BYTES // 1024} KB.")
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            raise DomainError("json_too_deep", f"The JSON body is nested deeper than {MAX_DEPTH} levels.")


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with every parsed text bounded first (request.get_json reads through it)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text that is within the bounds."""
        check_bounds(s)
        return super().loads(s, parse_float=_number, **kwargs)


def _number(text: str) -> float | int:
    """A JSON number with a fraction or exponent: the integer it equals, else the float."""
    value = float(text)
    return int(value) if value.is_integer() else value


def init_app(app: Flask) -> None:
    """Parse request bodies with the bounded provider."""
    app.json = BoundedJSONProvider(app)
