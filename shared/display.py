"""How values and sizes appear inside messages: short, exact enough, invisible characters named."""

from __future__ import annotations

import unicodedata

ECHO_MAX = 60  # characters of a value quoted in a message; a 1 MB cell must not make a 1 MB message
# Control, format (zero-width, BOM, bidi), surrogate, unassigned, and separators other than a space.
_INVISIBLE = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp", "Zs"}
_UNITS = ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB"))


def shown(value: str, limit: int = ECHO_MAX) -> str:
    """The value as a message quotes it: invisible characters as <U+200B>, cut after `limit` characters."""
    text = "".join(
        f"<U+{ord(char):04X}>" if char != " " and unicodedata.category(char) in _INVISIBLE else char
        for char in value[:limit]
    )
    return text + f"… ({len(value):,} characters)" if len(value) > limit else text


def size_text(size: int, unlike: int | None = None) -> str:
    """Bytes in the unit that suits them; with `unlike`, enough decimals that the two never read alike."""
    scale, unit = next(((s, u) for s, u in _UNITS if max(size, unlike or 0) >= s), (1, "bytes"))
    for decimals in range(2, 10):
        text = _amount(size, scale, decimals)
        if unlike is None or text != _amount(unlike, scale, decimals):
            return f"{text} {unit}"
    return f"{size:,} bytes"


def _amount(size: int, scale: int, decimals: int) -> str:
    text = f"{size / scale:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
