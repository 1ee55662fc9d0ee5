"""Dates as the package takes them: one parser for every door (CLI, MCP, DAG, files)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from retentionops.errors import UserError


class DateError(UserError, ValueError):
    """A value is not a date; the message shows it and the expected form."""


def as_date(value: Any) -> dt.date:
    """A date from a date, a datetime, or an ISO string (``2011-05-13``, or its datetime)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)
    except ValueError:
        raise DateError(f"'{value}' is not a date; use YYYY-MM-DD") from None
