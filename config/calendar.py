"""Trading calendars: one per instrument, New York Stock Exchange sessions by default.

Sessions come from ``exchange_calendars``. Its ``XNYS`` calendar knows regular hours
(09:30-16:00 America/New_York), exchange holidays and early closes (13:00). A ticker's calendar
(:func:`calendar_name`) is the exchange its Yahoo symbol names, ``24/5`` for FX, ``24/7`` for
crypto, ``us_futures`` (CME Globex) for futures, ``XNYS`` otherwise; it drives the synthetic
source's event times (:func:`in_session`) and a forecast's target date
(:func:`trading_day_after`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd
from exchange_calendars import ExchangeCalendar, get_calendar

from config.errors import ConfigError
from config.instruments import (  # noqa: F401  (re-exported: the calendar's view of a ticker)
    INDEX_MIC,
    NEW_YORK,
    US_MIC,
    YAHOO_SUFFIX_MIC,
    AssetClass,
    asset_class,
    exchange_mic,
)

EXCHANGE = US_MIC
"""ISO 10383 MIC of the New York Stock Exchange."""
EXCHANGE_TZ = ZoneInfo(NEW_YORK)
"""Time zone of the New York session."""
CALENDAR_START, CALENDAR_END = "1990-01-01", "2045-12-31"
"""Dates the calendar covers (bokeh-sampledata starts in 2000)."""


def calendar_name(ticker: str) -> str:
    """The ``exchange_calendars`` calendar of ``ticker``'s sessions: ``24/7`` for crypto,
    ``24/5`` for FX (weekdays), ``us_futures`` for futures, the index's or the Yahoo suffix's
    exchange (:data:`INDEX_MIC`, :data:`YAHOO_SUFFIX_MIC`), else ``XNYS``."""
    kind = asset_class(ticker)
    if kind == "crypto":
        return "24/7"
    if kind == "fx":
        return "24/5"
    if kind == "future":
        return "us_futures"
    return exchange_mic(ticker)


@lru_cache(maxsize=32)
def calendar(name: str = EXCHANGE) -> ExchangeCalendar:
    """The calendar ``name`` from :data:`CALENDAR_START` to :data:`CALENDAR_END`, or over
    what it covers when that is less (built once per name)."""
    try:
        return get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)
    except ValueError:  # e.g. a calendar whose first or last supported date is inside
        return get_calendar(name)


def trading_calendar_tz(name: str = EXCHANGE) -> ZoneInfo:
    """The time zone the calendar ``name`` labels its sessions in (UTC for 24/7 and 24/5)."""
    return ZoneInfo(str(calendar(name).tz))


def trading_calendar() -> ExchangeCalendar:
    """The XNYS calendar from :data:`CALENDAR_START` to :data:`CALENDAR_END` (built once)."""
    return calendar(EXCHANGE)


def _check(day: date, sessions: ExchangeCalendar | None = None) -> pd.Timestamp:
    cal = sessions or trading_calendar()
    stamp = pd.Timestamp(day)
    if not cal.first_session <= stamp < cal.last_session:
        raise ConfigError(f"date {day} is outside the {cal.name} trading calendar "
                          f"({cal.first_session.date()}..{cal.last_session.date()})")
    return stamp


def next_trading_day(day: date) -> date:
    """The first XNYS session after ``day`` (weekends and exchange holidays skipped).

    Raises:
        ConfigError: ``day`` is outside the calendar's range.
    """
    return trading_day_after(day, 1)


def trading_day_after(day: date, sessions: int, ticker: str | None = None) -> date:
    """The ``sessions``-th session after ``day`` in ``ticker``'s calendar
    (:func:`calendar_name`; XNYS when no ticker is given): weekends and holidays skipped as that
    market skips them (none for crypto); ``day`` itself need not be a session.

    Raises:
        ConfigError: ``day`` is outside the calendar's range, or ``sessions`` < 1.
    """
    if sessions < 1:
        raise ConfigError(f"sessions={sessions} must be >= 1")
    sessions_of = calendar(calendar_name(ticker) if ticker else EXCHANGE)
    base = sessions_of.date_to_session(_check(day, sessions_of), direction="previous")
    return sessions_of.session_offset(base, sessions).date()  # type: ignore[no-any-return]


@lru_cache(maxsize=8192)
def session_bounds(day: date, name: str = EXCHANGE) -> tuple[datetime, datetime] | None:
    """Open and close (UTC, timezone-aware) of the session labelled ``day`` in the calendar
    ``name`` (default XNYS; ``24/7``, ``24/5``, ``us_futures``, a MIC: :func:`calendar_name`),
    None if it has none.

    Cached per (day, calendar): the synthetic clock asks once per tick, and a pandas lookup
    costs ~200 us.

    Raises:
        ConfigError: ``day`` is outside the calendar's range.
    """
    sessions = calendar(name)
    stamp = _check(day, sessions)
    if not sessions.is_session(stamp):
        return None
    return (sessions.session_open(stamp).to_pydatetime().astimezone(UTC),
            sessions.session_close(stamp).to_pydatetime().astimezone(UTC))


def in_session(moment: datetime, name: str = EXCHANGE) -> datetime:
    """``moment`` if the market of calendar ``name`` (default XNYS) is open then, else its next
    session's open (UTC). A session is [open, close): at the close the next session's open is
    returned.

    Raises:
        ConfigError: ``moment`` is naive or outside the calendar's range.
    """
    if moment.tzinfo is None:
        raise ConfigError("in_session needs a timezone-aware datetime")
    day = moment.astimezone(trading_calendar_tz(name)).date() - timedelta(days=1)  # a futures session
    while True:  # labelled D opens the evening before D, so start one label earlier
        bounds = session_bounds(day, name)
        if bounds is not None:
            open_, close = bounds
            if moment < open_:
                return open_
            if moment < close:
                return moment.astimezone(UTC)
        day += timedelta(days=1)
