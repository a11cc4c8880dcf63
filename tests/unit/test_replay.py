"""The replay source: real daily bars -> ticks, and yfinance CSV layouts."""

from datetime import UTC, date, time, timedelta
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


def test_real_hourly_eurusd_bars_replay_inside_their_hours(
        eurusd_1h_csv: Path, caplog: pytest.LogCaptureFixture) -> None:
    """gym-anytrading's EURUSD hourly ask bars of 2017 (real, day-first times without an
    offset, read as UTC): detected as 1-hour bars; each bar's four ticks fall inside its UTC
    hour and rebuild it, fractional volumes exactly (tick v2 carries decimal volumes)."""
    from decimal import Decimal

    source = ReplaySource(["EURUSD=X"], [eurusd_1h_csv])
    bars = source.bars
    assert len(bars) == 6225 and set(bars.seconds) == {3600}
    assert str(bars.start.iloc[0]) == "2017-01-01 22:00:00+00:00"
    assert str(bars.start.iloc[-1]) == "2017-12-29 21:00:00+00:00"
    assert (bars.start.dt.minute == 0).all() and bars.line.tolist() == list(range(2, 6227))
    assert bars.volume.iloc[0] == Decimal("143539993.3") and "rounded" not in caplog.text
    fractional = [v for v in bars.volume if isinstance(v, Decimal)]
    assert len(fractional) == 30 and all(v != int(v) for v in fractional)
    ticks = list(source.ticks())
    assert len(ticks) == 4 * 6225 and len({t.tick_id for t in ticks}) == len(ticks)
    for bar, own in zip(source.iter_bars(), (ticks[i:i + 4] for i in range(0, len(ticks), 4)),
                        strict=True):
        assert bar.start is not None
        assert all(bar.start <= t.event_time < bar.start + timedelta(hours=1) for t in own)
        assert rebuild(own) == (bar.open, bar.high, bar.low, bar.close, bar.volume)
    assert [t.seq for t in ticks] == sorted(t.seq for t in ticks)


def test_intraday_times_with_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    """Ticker.history(interval="1m").to_csv layout: New York times with an offset."""
    path = tmp_path / "AAPL.csv"
    path.write_text(
        "Datetime,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2026-11-23 09:30:00-05:00,230.1,230.5,229.9,230.2,120000,0.0,0.0\n"
        "2026-11-23 09:31:00-05:00,230.2,230.4,230.0,230.3,80000,0.0,0.0\n"
        "2026-11-23 09:33:00-05:00,230.3,230.9,230.3,230.8,95000,0.0,0.0\n")
    bars = load_csv_bars(path)
    assert set(bars.seconds) == {60} and bars.ticker.tolist() == ["AAPL"] * 3
    assert [str(s) for s in bars.start] == ["2026-11-23 14:30:00+00:00",
                                            "2026-11-23 14:31:00+00:00",
                                            "2026-11-23 14:33:00+00:00"]


@pytest.mark.parametrize(("rows", "message"), [
    ("2017-01-02 00:00,1,2,0.5,1.5,10\n2017-01-02 01:00,1,2,0.5,abc,10\n",
     r"line 3: close 'abc' is not a number"),
    ("2017-01-02 00:00,1,2,0.5,1.5,10\n02/30/2017 01:00,1,2,0.5,1.5,10\n",
     r"line 3: '02/30/2017 01:00' is not a date or time"),
    ("2017-01-02 00:00,1,2,0.5,1.5,10\n2017-01-02 01:00,1,2,0.5,1.5,10\n"
     "2017-01-02 02:00,1,2,0.5,1.5,10\n2017-01-02 02:30,1,2,0.5,1.5,10\n"
     "2017-01-02 04:00,1,2,0.5,1.5,10\n",
     r"line 5: the bar at 2017-01-02 02:30:00\+00:00 starts 1800 s after the one before, "
     r"inside its 3600 s"),
    ("2017-01-02 01:00,1,2,0.5,1.5,10\n2017-01-02 00:00,1,2,0.5,1.5,10\n"
     "2017-01-02 01:00,1,2,0.5,1.5,11\n",
     r"lines 2 and 4: two bars at 2017-01-02 01:00:00\+00:00"),
])
def test_a_bad_row_is_named_by_its_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "X.csv"
    path.write_text("Datetime,Open,High,Low,Close,Volume\n" + rows)
    with pytest.raises(SourceError, match=message):
        load_csv_bars(path)


def test_empty_rows_are_left_out_with_their_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An empty value (yfinance's holiday rows) and a blank line: the bar is left out and the
    warning names its line; the blank line is not a bar."""
    path = tmp_path / "X.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2012-01-03,1,2,0.5,1.5,10\n\n"
                    "2012-01-04,,,,,\n2012-01-05,1,2,0.5,1.5,10\n")
    bars = load_csv_bars(path)
    assert bars.day.tolist() == [date(2012, 1, 3), date(2012, 1, 5)]
    assert bars.line.tolist() == [2, 5] and set(bars.seconds) == {86400}
    assert "left out 1 row(s) with an empty value (lines 4)" in caplog.text


def test_a_backfill_has_its_own_source_and_the_replays_ids() -> None:
    """``ticklake backfill``'s ticks: source ``backfill`` (Silver applies no watermark), the
    same ids, times, prices and volumes as the replay of the same days (so history already in
    Silver is a duplicate), only the days asked for."""
    first, last = date(2012, 6, 1), date(2012, 6, 30)
    replay = ReplaySource(["FB"], first_day=first, last_day=last)
    backfill = ReplaySource(["FB"], backfill=True, first_day=first, last_day=last)
    assert set(backfill.bars.day) <= {first + timedelta(days=d) for d in range(30)}
    assert len(backfill.bars) == 21  # June 2012's NYSE sessions
    ours, theirs = list(backfill.ticks()), list(replay.ticks())
    assert {t.source for t in ours} == {"backfill"} and {t.source for t in theirs} == {"replay"}
    assert [t.model_dump(exclude={"source"}) for t in ours] == [
        t.model_dump(exclude={"source"}) for t in theirs]
    with pytest.raises(SourceError, match="no bar between 2030-01-01 and the last day"):
        ReplaySource(["FB"], backfill=True, first_day=date(2030, 1, 1))


def test_a_newest_first_csv_replays_in_time_order(tmp_path: Path) -> None:
    """Many exports list the newest day first: the bars come out in time order, each with
    its own line number, and the replay's ticks run forward in time."""
    path = tmp_path / "X.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2012-01-05,3,4,2.5,3.5,30\n"
                    "2012-01-04,2,3,1.5,2.5,20\n2012-01-03,1,2,0.5,1.5,10\n")
    bars = load_csv_bars(path)
    assert bars.day.tolist() == [date(2012, 1, 3), date(2012, 1, 4), date(2012, 1, 5)]
    assert bars.line.tolist() == [4, 3, 2] and bars.volume.tolist() == [10, 20, 30]
    times = [t.event_time for t in ReplaySource([], [path]).ticks()]
    assert times == sorted(times)


def test_an_intraday_yf_download_csv_with_its_datetime_header_row(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``yf.download(..., interval="1h").to_csv()``: the third header row is ``Datetime``, not a
    bar (no warning about an empty row); UTC times; 1-hour bars."""
    path = tmp_path / "dl.csv"
    path.write_text(
        "Price,Close,High,Low,Open,Volume\nTicker,MSFT,MSFT,MSFT,MSFT,MSFT\nDatetime,,,,,\n"
        "2026-11-20 14:30:00+00:00,420.5,421.0,419.0,419.5,1200000\n"
        "2026-11-20 15:30:00+00:00,421.5,422.0,420.0,420.5,900000\n")
    bars = load_csv_bars(path)
    assert bars.ticker.tolist() == ["MSFT"] * 2 and set(bars.seconds) == {3600}
    assert bars.line.tolist() == [4, 5] and bars.open.tolist() == [419.5, 420.5]
    assert "left out" not in caplog.text


def test_a_non_us_daily_bar_ticks_in_its_own_exchanges_day(tmp_path: Path) -> None:
    """A Hong Kong daily bar's ticks go at 09:30-15:59 Hong Kong time (01:30-07:59 UTC), all
    on the bar's trade date; a US bar's stay at New York times (their ids unchanged)."""
    from zoneinfo import ZoneInfo

    from config.instruments import trading_date

    path = tmp_path / "0700.HK.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2024-03-01,290,295,288,294,1000\n"
                    "2024-03-04,294,296,291,292,1200\n")
    ticks = list(ReplaySource(["0700.HK"], [path]).ticks())
    local = [t.event_time.astimezone(ZoneInfo("Asia/Hong_Kong")) for t in ticks]
    assert [x.strftime("%Y-%m-%d %H:%M") for x in local[:4]] == [
        "2024-03-01 09:30", "2024-03-01 11:00", "2024-03-01 14:00", "2024-03-01 15:59"]
    assert [trading_date("0700.HK", t.event_time).isoformat() for t in ticks] == \
        ["2024-03-01"] * 4 + ["2024-03-04"] * 4
    assert ticks[0].event_time.hour == 1 and ticks[0].currency == "HKD"
