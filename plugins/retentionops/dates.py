"""Dates as the package takes them: one parser for every door (CLI, MCP, DAG, files).

Every date is bounded to ``EARLIEST_DATE`` .. tomorrow (UTC): a run date far in the future
would make the alert history pass compute millions of days before it answers, and a date
before 1970 is a typo, not a run. Tomorrow, not today, so a door in a time zone ahead of
UTC can still name its own today.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from retentionops.errors import UserError

#: The earliest date any door accepts (and any date setting may name).
EARLIEST_DATE = dt.date(1970, 1, 1)


class DateError(UserError, ValueError):
    """A value is not a date; the message shows it and the expected form."""


def latest_date() -> dt.date:
    """The latest date any door accepts: tomorrow in UTC."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)


def as_date(value: Any) -> dt.date:
    """A date from a date, a datetime, or an ISO string (``2011-05-13``, or its datetime),
    within ``EARLIEST_DATE`` .. tomorrow (UTC)."""
    return bounded(_parse(value), value)


def _parse(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)
    except ValueError:
        raise DateError(f"'{value}' is not a date; use YYYY-MM-DD") from None


def bounded(day: dt.date, given: Any = None) -> dt.date:
    """``day`` if it lies in ``EARLIEST_DATE`` .. tomorrow (UTC), else a one-line error."""
    shown = day.isoformat() if given is None else str(given)
    if day < EARLIEST_DATE:
        raise DateError(f"'{shown}' is before {EARLIEST_DATE}, the earliest date accepted")
    latest = latest_date()
    if day > latest:
        raise DateError(f"'{shown}' is after {latest} (tomorrow, UTC), the latest date accepted")
    return day
