"""The trading calendar: New York Stock Exchange sessions, holidays and early closes.

Sessions come from ``exchange_calendars`` (calendar ``XNYS``), which knows regular hours
(09:30-16:00 America/New_York), exchange holidays and early closes (13:00). It drives the
synthetic source's event times and the forecast's target date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd
from exchange_calendars import ExchangeCalendar, get_calendar

from config.errors import ConfigError

EXCHANGE = "XNYS"
"""ISO 10383 MIC of the New York Stock Exchange."""
EXCHANGE_TZ = ZoneInfo("America/New_York")
"""Time zone of the New York session."""
CALENDAR_START, CALENDAR_END = "1990-01-01", "2045-12-31"
"""Dates the calendar covers (bokeh-sampledata starts in 2000)."""


@lru_cache(maxsize=1)
def trading_calendar() -> ExchangeCalendar:
    """The XNYS calendar from :data:`CALENDAR_START` to :data:`CALENDAR_END` (built once)."""
    return get_calendar(EXCHANGE, start=CALENDAR_START, end=CALENDAR_END)


def _check(day: date) -> pd.Timestamp:
    calendar = trading_calendar()
    stamp = pd.Timestamp(day)
    if not calendar.first_session <= stamp < calendar.last_session:
        raise ConfigError(f"date {day} is outside the trading calendar "
                          f"({CALENDAR_START}..{CALENDAR_END})")
    return stamp


def next_trading_day(day: date) -> date:
    """The first XNYS session after ``day`` (weekends and exchange holidays skipped).

    Raises:
        ConfigError: ``day`` is outside the calendar's range.
    """
    return trading_day_after(day, 1)


def trading_day_after(day: date, sessions: int) -> date:
    """The ``sessions``-th XNYS session after ``day`` (weekends and exchange holidays skipped;
    ``day`` itself need not be a session).

    Raises:
        ConfigError: ``day`` is outside the calendar's range, or ``sessions`` < 1.
    """
    if sessions < 1:
        raise ConfigError(f"sessions={sessions} must be >= 1")
    calendar = trading_calendar()
    base = calendar.date_to_session(_check(day), direction="previous")
    return calendar.session_offset(base, sessions).date()  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def session_bounds(day: date) -> tuple[datetime, datetime] | None:
    """Open and close (UTC, timezone-aware) of the session on ``day``, None if it has none.

    Cached per day: the synthetic clock asks once per tick, and a pandas lookup costs ~200 us.

    Raises:
        ConfigError: ``day`` is outside the calendar's range.
    """
    stamp = _check(day)
    calendar = trading_calendar()
    if not calendar.is_session(stamp):
        return None
    return (calendar.session_open(stamp).to_pydatetime().astimezone(UTC),
            calendar.session_close(stamp).to_pydatetime().astimezone(UTC))


def in_session(moment: datetime) -> datetime:
    """``moment`` if the exchange is open then, else the next session's open (UTC).

    A session is [open, close): at the close the next session's open is returned.

    Raises:
        ConfigError: ``moment`` is naive or outside the calendar's range.
    """
    if moment.tzinfo is None:
        raise ConfigError("in_session needs a timezone-aware datetime")
    day = moment.astimezone(EXCHANGE_TZ).date()
    while True:
        bounds = session_bounds(day)
        if bounds is not None:
            open_, close = bounds
            if moment < open_:
                return open_
            if moment < close:
                return moment.astimezone(UTC)
        day += timedelta(days=1)
