"""How values and sizes appear in messages: invisible characters spelled out, long values cut,
sizes in a unit that suits them and never alike when they differ."""

from __future__ import annotations

import unicodedata

SHOWN_MAX = 60


def shown(value: str) -> str:
    """A value for a message: invisible characters as U+XXXX, cut at about 60 characters."""
    out = []
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn") or (
            char.isspace() and char != " "
        ):
            out.append(f"U+{ord(char):04X}")
        else:
            out.append(char)
    text = "".join(out)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def quoted(value: str) -> str:
    """A value in double quotes, as messages show it."""
    return f'"{shown(value)}"'


_UNITS = ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB"))


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
