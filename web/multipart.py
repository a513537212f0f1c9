"""werkzeug's multipart parser, remembering the parts whose file name it could not read.

A file name holding CR or LF (sent raw, not escaped as %0D/%0A) cuts the part's header line short:
the filename parameter loses its closing quote and werkzeug, finding no name, keeps the file as a
text field, exactly like `curl -F file=<users.csv`, which sends none. The upload view tells the two
apart by the names collected here (g.parts_with_cut_filename).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, g
from werkzeug.datastructures import Headers
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header


class _FieldWatchingParser(MultiPartParser):
    """Notes each text part whose Content-Disposition carried a filename parameter."""

    def get_part_charset(self, headers: Headers) -> str:
        # Called once for every text part, with its headers (werkzeug keeps no other trace of them).
        disposition = headers.get("content-disposition", "")
        if "filename" in disposition.lower():
            name = parse_options_header(disposition)[1].get("name")
            if name:
                g.setdefault("parts_with_cut_filename", set()).add(name)
        return super().get_part_charset(headers)


class _FormParser(FormDataParser):
    def _parse_multipart(
        self, stream: Any, mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> Any:
        parser = _FieldWatchingParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class _Request(Request):
    form_data_parser_class = _FormParser


def cut_filename(part: str) -> bool:
    """Whether the part came with a file name that its header's line breaks cut short."""
    return part in g.get("parts_with_cut_filename", set())


def init_app(app: Flask) -> None:
    """Parse forms with the watching parser."""
    app.request_class = _Request
