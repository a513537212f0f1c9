"""Where a login may send the browser afterwards: same-site paths only (no open redirect)."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_LENGTH = 2000


def safe_next(target: str | None) -> str | None:
    """The target when it is a plain path on this site, else None."""
    if not target or len(target) > MAX_LENGTH:
        return None
    # Browsers drop tabs and newlines and read "\\" as "/", which turns "/\t/host" or "/\\host"
    # into "//host": refuse any control character or backslash outright.
    if any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\\" for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
