"""The replay source: real daily bars -> ticks, and yfinance CSV layouts."""

from datetime import UTC, date, time
from pathlib import Path

import numpy as np
import pytest

from config.errors import SourceError
from producer.sources.replay import (
    EXCHANGE_TZ,
    Bar,
    ReplaySource,
    bar_to_ticks,
    load_bokeh_bars,
    load_csv_bars,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def rebuild(ticks: list) -> tuple[float, float, float, float, int]:
    ordered = sorted(ticks, key=lambda t: (t.event_time, t.seq))
    prices = [t.price for t in ordered]
    return prices[0], max(prices), min(prices), prices[-1], sum(t.volume for t in ordered)


def test_ticks_rebuild_the_bar_exactly_for_random_bars() -> None:
    """For 2,000 random consistent bars, first/max/min/last/sum of the ticks is the bar."""
    rng = np.random.default_rng(7)
    for i in range(2000):
        low = float(np.round(rng.uniform(1, 500), 2))
        high = float(np.round(low + rng.uniform(0, 20), 2))
        o, c = (float(np.round(rng.uniform(low, high), 2)) for _ in range(2))
        bar = Bar("TEST", date(2010, 1, 4) + (date(2010, 1, 5) - date(2010, 1, 4)) * (i % 300),
                  o, high, low, c, int(rng.integers(0, 10**9)))
        assert rebuild(bar_to_ticks(bar)) == (bar.open, bar.high, bar.low, bar.close, bar.volume)


def test_ticks_lie_inside_the_new_york_session_in_both_dst_regimes() -> None:
    """Tick times are 09:30-16:00 New York time, stored in UTC (winter and summer)."""
    for day, utc_open in ((date(2012, 1, 3), time(14, 30)), (date(2012, 7, 3), time(13, 30))):
        ticks = bar_to_ticks(Bar("IBM", day, 10.0, 11.0, 9.0, 10.5, 1000))
        assert ticks[0].event_time.tzinfo == UTC and ticks[0].event_time.time() == utc_open
        for t in ticks:
            local = t.event_time.astimezone(EXCHANGE_TZ)
            assert local.date() == day and time(9, 30) <= local.time() <= time(16, 0)


def test_up_day_visits_low_before_high_and_down_day_the_reverse() -> None:
    """Path assumption: O-L-H-C on an up day, O-H-L-C on a down day."""
    up = [t.price for t in bar_to_ticks(Bar("X", date(2012, 1, 3), 10, 12, 9, 11, 8))]
    down = [t.price for t in bar_to_ticks(Bar("X", date(2012, 1, 3), 11, 12, 9, 10, 8))]
    assert up == [10, 9, 12, 11] and down == [11, 12, 9, 10]


def test_tick_ids_are_the_same_when_replayed_from_another_start() -> None:
    """Ids and seq do not depend on where the replay starts (replays deduplicate)."""
    full = {t.tick_id: t.seq for t in ReplaySource(["FB"]).ticks()}
    tail = {t.tick_id: t.seq for t in ReplaySource(["FB"], limit_days=10).ticks()}
    assert len(tail) == 40 and all(full[i] == s for i, s in tail.items())


def test_bokeh_sample_data_has_the_five_tickers_with_their_history() -> None:
    """bokeh-sampledata ships 3,270 AAPL/IBM/MSFT days, 2,148 GOOG and 196 FB."""
    bars = load_bokeh_bars(["AAPL", "IBM", "MSFT", "GOOG", "FB"])
    assert bars.groupby("ticker").size().to_dict() == {
        "AAPL": 3270, "FB": 196, "GOOG": 2148, "IBM": 3270, "MSFT": 3270}
    first = bars[bars.ticker == "AAPL"].iloc[0]
    assert (first.day, first.open, first.close, first.volume) == (
        date(2000, 3, 1), 118.56, 130.31, 9616100)


def test_unknown_bokeh_ticker_names_what_is_available() -> None:
    """Asking bokeh-sampledata for a ticker it lacks lists the available ones."""
    with pytest.raises(SourceError, match=r"\['AAPL', 'FB', 'GOOG', 'IBM', 'MSFT'\]"):
        load_bokeh_bars(["TSLA"])


def test_yf_download_csv_with_three_header_rows() -> None:
    """The yf.download layout: ticker from the Ticker row, OHLCV from the named columns."""
    bars = load_csv_bars(DATA / "yf_download_MSFT.csv")
    assert len(bars) == 60 and set(bars.ticker) == {"MSFT"}
    first = bars.iloc[0]
    assert (first.day, first.open, first.high, first.low, first.close, first.volume) == (
        date(2012, 1, 3), 26.55, 26.96, 26.39, 26.765, 64731500)


def test_ticker_history_csv_with_offsets_and_an_empty_holiday_row() -> None:
    """The Ticker.history layout: tz-offset dates; the row without prices is left out."""
    bars = load_csv_bars(DATA / "ticker_history_IBM.csv", "IBM")
    assert len(bars) == 60 and set(bars.ticker) == {"IBM"}
    assert date(2012, 1, 16) not in set(bars.day)
    assert (bars.iloc[0].day, bars.iloc[0].open) == (date(2012, 1, 3), 186.73)


def test_file_name_that_is_not_a_ticker_asks_for_tickers() -> None:
    """Without --tickers the file name must be a valid ticker; the error says what to do."""
    with pytest.raises(SourceError, match="pass --tickers"):
        load_csv_bars(DATA / "ticker_history_IBM.csv")


def test_csv_without_ohlcv_columns_names_what_is_missing(tmp_path: Path) -> None:
    """A CSV lacking Volume is refused with the missing column and the expected layout."""
    path = tmp_path / "bad.csv"
    path.write_text("Date,Open,High,Low,Close\n2012-01-03,1,2,0.5,1.5\n")
    with pytest.raises(SourceError, match=r"missing column\(s\) \['volume'\]"):
        load_csv_bars(path)


def test_tickers_must_match_csv_files_one_to_one() -> None:
    """Two tickers for one CSV is an error that explains the rule."""
    with pytest.raises(SourceError, match="one ticker per file"):
        ReplaySource(["IBM", "MSFT"], [DATA / "yf_download_MSFT.csv"])


def test_a_crypto_csv_replays_with_its_yahoo_symbol_and_its_weekend_days() -> None:
    """BTC-USD from the Ticker row; Saturday and Sunday bars are kept; every bar's ticks fall
    on its UTC day and rebuild it exactly."""
    source = ReplaySource([], [DATA / "yf_download_BTC-USD.csv"])
    assert set(source.bars.ticker) == {"BTC-USD"} and len(source.bars) == 10
    assert {d.weekday() for d in source.bars.day} == set(range(7))
    ticks = list(source.ticks())
    assert len(ticks) == 40 and {t.ticker for t in ticks} == {"BTC-USD"}
    for bar in source.iter_bars():
        own = [t for t in ticks if t.event_time.date() == bar.day]
        assert rebuild(own) == (bar.open, bar.high, bar.low, bar.close, bar.volume)
