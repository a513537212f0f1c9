"""Reading stored timestamps: SQLite hands back naive datetimes for timezone-aware columns."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime) -> datetime:
    """The moment with its UTC zone (values are always stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """The moment as RFC 3339 text with its zone (what the API answers), or None."""
    return aware(moment).isoformat() if moment is not None else None
