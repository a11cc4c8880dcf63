"""Gold's partial bars in Arrow (pipeline.bars): OHLCV rules, rollups, trade dates, and that
any split of the ticks into tasks or micro-batches combines to the bars of the whole."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.instruments import trading_date
from pipeline.bars import combine_bars, daily_metrics, partial_bars, trading_dates
from producer.sources.synthetic import MarketClock, SyntheticSource

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def ticks_table(rows: list[tuple]) -> pa.Table:
    """(ticker, event_time, seq, tick_id, price, volume[, volume_decimal]) rows."""
    columns = ["ticker", "event_time", "seq", "tick_id", "price", "volume", "volume_decimal"]
    table = pa.Table.from_pylist([dict(zip(columns, r, strict=False)) for r in rows])
    return table.set_column(1, "event_time", table.column("event_time").cast(TS))


def bars_of(ticks: pa.Table, interval: str) -> list[dict]:
    bars = partial_bars(ticks, (interval,), NOW)
    return sorted(bars.to_pylist(), key=lambda b: (b["ticker"], b["window_start"]))


def test_bars_take_open_and_close_by_event_time_then_seq() -> None:
    """Open is the first tick by (event_time, seq), close the last, whatever the row order;
    vwap is Σ price x volume / Σ volume, null when the volume is 0."""
    t = lambda h, m: datetime(2012, 1, 3, h, m, tzinfo=UTC)  # noqa: E731
    ticks = ticks_table([
        ("AAA", t(20, 59), 9, "z", 11.0, 10),   # last by time -> close
        ("AAA", t(14, 30), 2, "b", 10.5, 20),   # same time as next, higher seq
        ("AAA", t(14, 30), 1, "a", 10.0, 30),   # first by (time, seq) -> open
        ("AAA", t(16, 0), 5, "c", 12.0, 0),
        ("AAA", t(17, 0), 6, "d", 9.5, 40),
        ("BBB", t(15, 0), 1, "e", 50.0, 0),
    ])
    a, b = bars_of(ticks, "1d")
    assert (a["open"], a["high"], a["low"], a["close"], a["volume"], a["trade_count"]) == (
        10.0, 12.0, 9.5, 11.0, 100, 5)
    assert (a["open_tick_id"], a["close_tick_id"]) == ("a", "z")
    assert a["vwap"] == pytest.approx((11 * 10 + 10.5 * 20 + 10 * 30 + 9.5 * 40) / 100)
    assert a["avg_price"] == pytest.approx((11 + 10.5 + 10 + 12 + 9.5) / 5)
    assert (a["window_start"], a["window_end"]) == (datetime(2012, 1, 3, tzinfo=UTC),
                                                    datetime(2012, 1, 4, tzinfo=UTC))
    assert b["vwap"] is None and b["volume"] == 0


def test_intraday_windows_are_aligned_on_the_utc_epoch() -> None:
    """A 5m bar holds [14:30, 14:35); 14:35:00 opens the next; a 1h bar [14:00, 15:00)."""
    t = lambda m, s: datetime(2012, 1, 3, 14, m, s, tzinfo=UTC)  # noqa: E731
    ticks = ticks_table([("AAA", t(30, 0), 1, "a", 1.0, 1), ("AAA", t(34, 59), 2, "b", 2.0, 1),
                         ("AAA", t(35, 0), 3, "c", 3.0, 1)])
    five = bars_of(ticks, "5m")
    assert [(b["window_start"].minute, b["window_end"].minute, b["trade_count"]) for b in five] \
        == [(30, 35, 2), (35, 40, 1)]
    [hour] = bars_of(ticks, "1h")
    assert (hour["window_start"].hour, hour["window_end"].hour, hour["close"]) == (14, 15, 3.0)


def test_daily_metrics_average_and_sum_per_trade_date() -> None:
    """avg_price is the mean tick price, total_volume the sum, trades the count, per day."""
    ticks = ticks_table([("AAA", datetime(2012, 1, 3, 14, 30, tzinfo=UTC), 1, "a", 10.0, 5),
                         ("AAA", datetime(2012, 1, 3, 20, 0, tzinfo=UTC), 2, "b", 14.0, 7),
                         ("AAA", datetime(2012, 1, 4, 14, 30, tzinfo=UTC), 3, "c", 20.0, 1)])
    metrics = daily_metrics(partial_bars(ticks, ("1d",), NOW)).to_pylist()
    got = {m["trading_date"]: m for m in metrics}
    day = got[date(2012, 1, 3)]
    assert (day["avg_price"], day["total_volume"], day["trades"]) == (12.0, 12, 2)
    assert got[date(2012, 1, 4)]["avg_price"] == 20.0


def synthetic_ticks(count: int = 6000) -> pa.Table:
    """Two tickers of synthetic ticks, 9 s apart in NYSE sessions; exact volumes in eighths
    (fractional, as FX and crypto volumes are), ``volume`` the whole units."""
    clock = MarketClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC), step_s=9,
                        now=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    ticks = [t.model_dump() for t in SyntheticSource(["AAA", "BBB"], seed=9, count=count,
                                                      clock=clock).ticks()]
    table = ticks_table([(t["ticker"], t["event_time"], t["seq"], t["tick_id"], t["price"],
                          round(t["volume"] / 8), t["volume"] / Decimal(8)) for t in ticks])
    return table.set_column(6, "volume_decimal",
                            table.column("volume_decimal").cast(pa.decimal128(38, 8)))


def test_longer_bars_are_the_rollup_of_shorter_ones() -> None:
    """On the same intraday ticks, 5m bars equal the rollup of 1m bars, 1h bars the rollup
    of 5m bars and 1d bars the rollup of 1h bars: first open, max high, min low, last close,
    summed volume, exact decimal volume and count."""
    ticks = synthetic_ticks()
    every = partial_bars(ticks, ("1m", "5m", "1h", "1d"), NOW).to_pandas()
    bars = {i: every[every["interval"] == i].sort_values(["ticker", "window_start"])
            for i in ("1m", "5m", "1h", "1d")}
    # 6.5 h sessions at 9 s per tick: 2,600 ticks a day, so 6,000 ticks span 3 days x 2 tickers
    assert bars["1d"]["trade_count"].sum() == 6000 and len(bars["1d"]) == 6
    assert bars["1d"]["volume_decimal"].sum() == sum(ticks.column("volume_decimal").to_pylist())
    assert any(v != int(v) for v in bars["1m"]["volume_decimal"])  # fractions, summed exactly

    def rollup(short: pd.DataFrame, freq: str) -> pd.DataFrame:
        key = [short["ticker"], short["window_start"].dt.floor(freq)]
        g = short.groupby(key)
        out = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                            "low": g["low"].min(), "close": g["close"].last(),
                            "volume": g["volume"].sum(), "trade_count": g["trade_count"].sum(),
                            "volume_decimal": g["volume_decimal"].sum()})
        return out.reset_index(drop=True)

    assert len(bars["5m"]) < len(bars["1m"]) and len(bars["5m"]) > len(bars["1h"])
    for short, long, freq in (("1m", "5m", "5min"), ("5m", "1h", "h"), ("1h", "1d", "D")):
        expected = rollup(bars[short], freq)
        got = bars[long][expected.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


EXACT = ["interval", "ticker", "window_start", "window_end", "open", "high", "low", "close",
         "volume", "trade_count", "open_time", "open_seq", "open_tick_id", "close_time",
         "close_seq", "close_tick_id", "volume_decimal"]
SUMMED = ["notional", "price_sum", "vwap", "avg_price"]  # float sums: equal up to rounding


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1499), max_size=8),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_any_split_into_tasks_combines_to_the_bars_of_the_whole(cuts, seed) -> None:
    """Ticks shuffled and cut anywhere (tasks, micro-batches), each part's partial bars, then
    combined: the bars of all ticks at once; exact columns equal, float sums to 1e-9."""
    ticks = synthetic_ticks(1500)
    intervals = ("1m", "5m", "1h", "1d")
    whole = partial_bars(ticks, intervals, NOW)
    order = list(range(ticks.num_rows))
    random.Random(seed).shuffle(order)
    shuffled = ticks.take(pa.array(order))
    bounds = [0, *sorted(set(cuts)), ticks.num_rows]
    parts = [partial_bars(shuffled.slice(a, b - a), intervals, NOW)
             for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    combined = combine_bars(pa.concat_tables(parts))
    assert combined.select(EXACT).equals(whole.select(EXACT))
    for name in SUMMED:
        assert combined.column(name).to_pylist() == pytest.approx(
            whole.column(name).to_pylist(), rel=1e-9)


def test_ticks_without_an_exact_volume_count_their_whole_volume() -> None:
    """A tick a v1 release stored has no ``volume_decimal`` (null, or no column at all): its
    whole ``volume`` is exact, and the bar sums it exactly."""
    t = datetime(2012, 1, 3, 14, 30, tzinfo=UTC)
    with_null = ticks_table([("AAA", t, 1, "a", 10.0, 5, None), ("AAA", t, 2, "b", 10.0, 3,
                                                                 Decimal("0.5"))])
    with_null = with_null.set_column(6, "volume_decimal",
                                     with_null.column("volume_decimal").cast(pa.decimal128(38, 8)))
    [bar] = bars_of(with_null, "1d")
    assert bar["volume_decimal"] == Decimal("5.5") and bar["volume"] == 8
    [bar] = bars_of(ticks_table([("AAA", t, 1, "a", 10.0, 5)]), "1d")
    assert bar["volume_decimal"] == Decimal(5) and bar["vwap"] == 10.0


TRADED = ["AAPL", "BRK.B", "0700.HK", "VOD.L", "SHOP.TO", "RELIANCE.NS", "^GSPC", "^N225",
          "^AXJO", "^FTSE", "EURUSD=X", "JPY=X", "BTC-USD", "ETH-BTC", "GC=F", "ZZZZ.QQ"]


def test_the_trade_date_in_arrow_equals_the_python_rule() -> None:
    """``pipeline.bars.trading_dates`` (vectorised) and ``config.instruments.trading_date``
    give the same trade date for every kind of symbol, every half hour of two weeks that hold
    both US and European DST changes and the FX/futures rolls."""
    start = datetime(2024, 3, 7, tzinfo=UTC)  # US DST on 10 March, EU on 31 March 2024
    hours = [start + timedelta(minutes=30 * i) for i in range(2 * 24 * 26)]
    rows = [(t, h) for t in TRADED for h in hours]
    got = trading_dates(pa.array([t for t, _ in rows]), pa.array([h for _, h in rows], TS))
    expected = [trading_date(t, h) for t, h in rows]
    mismatched = [r for r, g, e in zip(rows, got.to_pylist(), expected, strict=True) if g != e]
    assert mismatched == []
    # what the rule means, for three markets
    assert trading_date("EURUSD=X", datetime(2024, 3, 10, 22, tzinfo=UTC)).isoformat() == \
        "2024-03-11"  # Sunday 18:00 New York: Monday's FX trade date
    assert trading_date("AAPL", datetime(2024, 3, 9, 1, tzinfo=UTC)).isoformat() == \
        "2024-03-08"  # Friday 20:00 New York
    assert trading_date("^AXJO", datetime(2024, 3, 10, 23, tzinfo=UTC)).isoformat() == \
        "2024-03-11"  # Monday 10:00 Sydney


def test_a_daily_bar_is_the_markets_trade_date() -> None:
    """bars_1d and daily metrics group ticks by trade date: EURUSD's Sunday-evening hours
    (New York) open Monday's bar and 17:00 New York starts Tuesday's; a Hong Kong morning that
    is the previous UTC evening stays on its local day; AAPL's ticks keep their UTC day."""
    ticks = [("EURUSD=X", datetime(2024, 3, 10, 22, 0, tzinfo=UTC), 1.09),
             ("EURUSD=X", datetime(2024, 3, 11, 20, 59, tzinfo=UTC), 1.10),
             ("EURUSD=X", datetime(2024, 3, 11, 21, 0, tzinfo=UTC), 1.11),  # 17:00 NY: Tuesday
             ("0700.HK", datetime(2024, 3, 10, 23, 30, tzinfo=UTC), 300.0),  # Mon 07:30 HK
             ("0700.HK", datetime(2024, 3, 11, 7, 59, tzinfo=UTC), 301.0),
             ("AAPL", datetime(2024, 3, 11, 13, 30, tzinfo=UTC), 170.0)]
    table = ticks_table([(t, when, i, f"{i:032x}", price, 10)
                         for i, (t, when, price) in enumerate(ticks)])
    bars = bars_of(table, "1d")
    got = sorted((b["ticker"], b["window_start"].date().isoformat(), b["trade_count"], b["close"])
                 for b in bars)
    assert got == [("0700.HK", "2024-03-11", 2, 301.0), ("AAPL", "2024-03-11", 1, 170.0),
                   ("EURUSD=X", "2024-03-11", 2, 1.10), ("EURUSD=X", "2024-03-12", 1, 1.11)]
    assert all((b["window_end"] - b["window_start"]).days == 1 for b in bars)
    metrics = daily_metrics(partial_bars(table, ("1d",), NOW))
    assert sorted(zip(metrics.column("ticker").to_pylist(),
                      [d.isoformat() for d in metrics.column("trading_date").to_pylist()],
                      metrics.column("trades").to_pylist(), strict=True)) == [
        ("0700.HK", "2024-03-11", 2), ("AAPL", "2024-03-11", 1), ("EURUSD=X", "2024-03-11", 2),
        ("EURUSD=X", "2024-03-12", 1)]
    assert pc.all(pc.equal(metrics.column("updated_at"), pa.scalar(NOW, TS))).as_py()
