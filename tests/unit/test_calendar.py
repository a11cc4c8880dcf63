"""Market calendars per instrument: the forecast's target date follows the ticker's market."""

from datetime import date

import pytest

from config.calendar import asset_class, calendar_name, trading_day_after
from config.errors import ConfigError


@pytest.mark.parametrize(("ticker", "kind", "name"), [
    ("AAPL", "equity", "XNYS"), ("BRK.B", "equity", "XNYS"), ("BRK-B", "equity", "XNYS"),
    ("0700.HK", "equity", "XHKG"), ("VOD.L", "equity", "XLON"), ("^GSPC", "index", "XNYS"),
    ("^N225", "index", "XTKS"), ("EURUSD=X", "fx", "24/5"), ("BTC-USD", "crypto", "24/7"),
    ("ETH-BTC", "crypto", "24/7"), ("GC=F", "future", "us_futures"),
])
def test_a_yahoo_symbol_names_its_asset_class_and_market(ticker: str, kind: str,
                                                          name: str) -> None:
    assert (asset_class(ticker), calendar_name(ticker)) == (kind, name)


@pytest.mark.parametrize(("ticker", "day", "sessions", "target"), [
    # Good Friday 2024-03-29: NYSE, LSE, HKEX and CME closed; Tokyo and FX open; crypto always
    ("AAPL", date(2024, 3, 28), 1, date(2024, 4, 1)),
    ("VOD.L", date(2024, 3, 28), 1, date(2024, 4, 2)),  # Easter Monday closed too
    ("0700.HK", date(2024, 3, 28), 1, date(2024, 4, 2)),
    ("GC=F", date(2024, 3, 28), 1, date(2024, 4, 1)),
    ("^N225", date(2024, 3, 28), 1, date(2024, 3, 29)),
    ("EURUSD=X", date(2024, 3, 29), 1, date(2024, 4, 1)),  # Friday -> Monday
    ("BTC-USD", date(2024, 3, 29), 1, date(2024, 3, 30)),  # Friday -> Saturday
    ("BTC-USD", date(2024, 3, 29), 5, date(2024, 4, 3)),
    ("0700.HK", date(2024, 2, 9), 1, date(2024, 2, 14)),  # Lunar New Year
    ("AAPL", date(2024, 3, 30), 1, date(2024, 4, 1)),  # from a Saturday: the next session
])
def test_the_target_date_follows_the_tickers_market(ticker: str, day: date, sessions: int,
                                                     target: date) -> None:
    assert trading_day_after(day, sessions, ticker) == target


def test_without_a_ticker_it_is_the_nyse_and_bad_input_is_named() -> None:
    assert trading_day_after(date(2024, 3, 28), 1) == date(2024, 4, 1)
    with pytest.raises(ConfigError, match="sessions=0 must be >= 1"):
        trading_day_after(date(2024, 3, 28), 0, "BTC-USD")
    with pytest.raises(ConfigError, match="outside the 24/7 trading calendar"):
        trading_day_after(date(1980, 1, 2), 1, "BTC-USD")


def test_each_exchange_time_zone_is_its_calendars() -> None:
    """config.instruments keeps exchanges' time zones without importing exchange_calendars (the
    message and Spark use them); they must be the calendars' own."""
    from config.calendar import calendar
    from config.instruments import MIC_TZ

    assert {mic: str(calendar(mic).tz) for mic in MIC_TZ} == MIC_TZ
