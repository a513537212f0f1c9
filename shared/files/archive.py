"""Checks on a workbook's ZIP archive before any XML in it is parsed: bombs, lying sizes, entity tricks."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator

from shared.errors import FileRejected
from shared.files.table import SAVE_AS
from shared.text import shown, size_text

# A 500-row user list is well under a few MB of XML; deflate tops out near 1000:1.
_MAX_UNZIPPED, _MAX_RATIO, _RATIO_FLOOR = 64 * 1024 * 1024, 100, 1024 * 1024
_MAX_PARTS = 1000  # a workbook has a few dozen parts
# Parts openpyxl parses whole (styles, shared strings): 4 MB is about a second of its time.
_MAX_WHOLE_PART = 4 * 1024 * 1024
# Tags to parse across the XML parts ("<" counted while unpacking): about a second of parsing at
# worst (a sheet without <dimension> is parsed twice, once by openpyxl to size it). 500 rows of 200
# filled cells need some 400,000; the corpus's largest workbook has 90,000.
_MAX_MARKUP = 600_000
_CHUNK = 64 * 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_EXTERNAL = re.compile(rb"<!(DOCTYPE|ENTITY)[^>]*\b(SYSTEM|PUBLIC)\b")
# Spreadsheet programs never write a DOCTYPE, and without one no entity can be declared.
_DOCTYPE = re.compile(
    b"|".join(re.escape("<!DOCTYPE".encode(e)) for e in ("utf-8", "utf-16-le", "utf-16-be"))
)
_KINDS = {"word/document.xml": "a Word document", "ppt/presentation.xml": "a PowerPoint presentation"}
_OPEN_DOCUMENT = {b"spreadsheet": "an OpenDocument spreadsheet (.ods)", b"text": "an OpenDocument text"}


def check_workbook_archive(data: bytes) -> None:
    """Refuse a ZIP that is no workbook, or that would cost far more to unpack than a user list."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as exc:
        raise unreadable_xlsx("it is damaged (not a complete ZIP archive)") from exc
    names = {info.filename for info in infos}
    if "xl/workbook.xml" not in names:
        raise FileRejected(
            "unsupported_format", f"This file is {_kind(archive, names)}, not a user list. {SAVE_AS}"
        )
    _check_directory(infos, len(names))
    markup = 0
    for info in infos:
        head, tags = _check_part(data, info)
        markup += tags
        if markup > _MAX_MARKUP:
            raise unreadable_xlsx(
                f"it holds over {_MAX_MARKUP:,} XML tags, far more than a user list needs (cells "
                "formatted far beyond the data?); copy the users into a new workbook"
            )
        if info.filename == "xl/workbook.xml" and b"purl.oclc.org/ooxml/spreadsheetml" in head:
            raise unreadable_xlsx("it is saved in the 'Strict Open XML Spreadsheet' format")


def unreadable_xlsx(why: str) -> FileRejected:
    """The refusal of a workbook that cannot or must not be read, saying why."""
    return FileRejected("unreadable_file", f"The Excel file cannot be read: {why}. {SAVE_AS}")


def _kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "mimetype" in names:
        with archive.open("mimetype") as part:
            mimetype = part.read(100)
        return next(
            (k for word, k in _OPEN_DOCUMENT.items() if mimetype.endswith(word)), "an OpenDocument file"
        )
    return next((kind for part, kind in _KINDS.items() if part in names), "a ZIP archive")


def _check_directory(infos: list[zipfile.ZipInfo], distinct: int) -> None:
    """What the ZIP directory itself gives away: too many parts, shared data, sizes, methods."""
    if len(infos) > _MAX_PARTS:
        raise unreadable_xlsx(
            f"it holds {len(infos):,} parts, where a workbook has a few dozen (a zip bomb?)"
        )
    if distinct < len(infos):
        raise unreadable_xlsx("two of its parts have the same name (the archive was tampered with)")
    if len({info.header_offset for info in infos}) < len(infos):
        raise unreadable_xlsx("several of its parts share the same compressed data (an overlapping zip bomb)")
    total = sum(info.file_size for info in infos)
    if total > _MAX_UNZIPPED or any(
        i.file_size > _RATIO_FLOOR and i.file_size > _MAX_RATIO * i.compress_size for i in infos
    ):
        raise unreadable_xlsx(f"it unpacks to {size_text(total)}, far more than a user list (a zip bomb)")
    for info in infos:
        name = shown(info.filename)
        if info.flag_bits & 0x1:
            raise unreadable_xlsx(f"its part '{name}' is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise unreadable_xlsx(
                f"its part '{name}' is packed with a method spreadsheet programs never use "
                f"(ZIP method {info.compress_type})"
            )
        parsed_whole = not info.filename.startswith("xl/worksheets/")
        if parsed_whole and _is_xml(info.filename) and info.file_size > _MAX_WHOLE_PART:
            raise unreadable_xlsx(
                f"its part '{name}' is {size_text(info.file_size)}, far more than a user list needs; copy "
                "the users into a new workbook"
            )


def _is_xml(name: str) -> bool:
    return name.endswith((".xml", ".rels"))


def _check_part(data: bytes, info: zipfile.ZipInfo) -> tuple[bytes, int]:
    """Unpack one part as the directory describes it; returns its first bytes and its XML tag count."""
    name, xml = shown(info.filename), _is_xml(info.filename)
    size, crc, head, tags, window = 0, 0, b"", 0, b""
    try:
        for chunk in _unpack(data, info):
            size += len(chunk)
            if size > info.file_size:
                raise unreadable_xlsx(
                    f"its part '{name}' unpacks to more than the {size_text(info.file_size)} its ZIP "
                    "directory claims (a zip bomb trick)"
                )
            crc = zlib.crc32(chunk, crc)
            head += chunk[: 4096 - len(head)]
            if xml:
                tags += chunk.count(b"<")
                window = window[-32:] + chunk  # a DOCTYPE cut in two by the chunks is still found
                if found := _DOCTYPE.search(window):
                    raise unreadable_xlsx(
                        _doctype_problem(name, window[found.start() : found.start() + 4096])
                    )
    except (zlib.error, struct.error) as exc:
        raise unreadable_xlsx(f"its part '{name}' is damaged (its compressed data is broken)") from exc
    if size < info.file_size or crc != info.CRC:
        raise unreadable_xlsx(f"its part '{name}' is damaged (its size or checksum does not match)")
    return head, tags


def _unpack(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The part's bytes, inflated here rather than by zipfile, which stops at the size it is told."""
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if signature != b"PK\x03\x04" or start + info.compress_size > len(data):
        raise zlib.error("no local header, or the data runs past the end of the file")
    raw = memoryview(data)[start : start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        for position in range(0, len(raw), _CHUNK):
            yield bytes(raw[position : position + _CHUNK])
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for position in range(0, len(raw), _CHUNK):
        pending: bytes | memoryview = raw[position : position + _CHUNK]
        while pending and not inflater.eof:
            yield inflater.decompress(pending, _CHUNK)  # at most one chunk out per call: bombs stay small
            pending = inflater.unconsumed_tail
    yield inflater.flush()


def _doctype_problem(name: str, declaration: bytes) -> str:
    if declaration[:2] in (b"<\x00", b"\x00<"):  # UTF-16: read it as text first
        declaration = declaration.decode(
            "utf-16-le" if declaration[:1] == b"<" else "utf-16-be", "ignore"
        ).encode()
    if _EXTERNAL.search(declaration):
        return f"its part '{name}' refers to an outside file or address (an XML external entity, XXE)"
    if b"<!ENTITY" in declaration:
        return (
            f"its part '{name}' declares XML entities (a DOCTYPE with <!ENTITY>, as in the 'billion laughs' "
            "expansion attack)"
        )
    return f"its part '{name}' carries an XML DOCTYPE declaration, which spreadsheet programs never write"
