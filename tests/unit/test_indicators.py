"""Indicators against reference values on real prices, and anomaly flags on planted spikes.

References are independent of the code under test: TA-Lib (C implementation) for SMA, EMA,
MACD, Bollinger Bands and RSI; plain numpy loops from the textbook definitions for the rest.
Tolerance: 1e-9 relative (plus 1e-12 absolute for values that cross zero); warm-up nulls must
be equal.
"""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import talib

from pipeline.indicators import anomalies, indicators_1d, indicators_1h
from producer.sources.replay import load_bokeh_bars

TICKERS = ["AAPL", "IBM", "MSFT", "GOOG", "FB"]


def same(ours: pd.Series, ref: np.ndarray) -> None:
    ours = np.asarray(ours, dtype=float)
    ref = np.asarray(ref, dtype=float)
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "warm-up nulls differ"
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module", params=TICKERS)
def daily(request: pytest.FixtureRequest) -> pd.DataFrame:
    bars = load_bokeh_bars([request.param])
    bars["window_start"] = pd.to_datetime(bars["day"]).dt.tz_localize("UTC")
    return indicators_1d(bars)


def rolling_loop(x: np.ndarray, n: int, fn) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        window = x[i - n + 1:i + 1]
        if not np.isnan(window).any():
            out[i] = fn(window)
    return out


def test_moving_averages_bands_and_rsi_match_ta_lib(daily: pd.DataFrame) -> None:
    """SMA 7/14/30, EMA 12/26, MACD (12, 26, 9), Bollinger (20, 2), RSI 14 equal TA-Lib's."""
    close = daily["close"].to_numpy()
    for n in (7, 14, 30):
        same(daily[f"sma_{n}"], talib.SMA(close, n))
    same(daily["ema_12"], talib.EMA(close, 12))
    same(daily["ema_26"], talib.EMA(close, 26))
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    same(daily["macd"], macd)
    same(daily["macd_signal"], signal)
    same(daily["macd_hist"], hist)
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, 0)
    same(daily["bb_upper"], upper)
    same(daily["bb_middle"], middle)
    same(daily["bb_lower"], lower)
    same(daily["rsi_14"], talib.RSI(close, 14))


def test_returns_volatility_and_rolling_stats_match_textbook_loops(daily: pd.DataFrame) -> None:
    """Returns, annualised volatility (sample std of log returns x sqrt 252), 30-day volume
    mean and 30-day median close equal straightforward loops."""
    close = daily["close"].to_numpy()
    prev = np.concatenate([[np.nan], close[:-1]])
    same(daily["simple_return"], close / prev - 1)
    log_ret = np.array([math.log(c / p) if not np.isnan(p) else np.nan for c, p in zip(close, prev,
                                                                                       strict=True)])
    same(daily["log_return"], log_ret)
    for n in (14, 30):
        same(daily[f"volatility_{n}"],
             rolling_loop(log_ret, n, lambda w: np.std(w, ddof=1) * math.sqrt(252)))
    same(daily["vol_moving_avg"], rolling_loop(daily["volume"].to_numpy(float), 30, np.mean))
    same(daily["adj_close_rolling_med"], rolling_loop(close, 30, np.median))
    assert daily["volatility_14"].isna().sum() == 14 and daily["rsi_14"].isna().sum() == 14


def test_hourly_analytics_match_loops() -> None:
    """return_1h, ma_3 (avg_price) and vol_3 (std of return_1h) over consecutive hourly bars."""
    rng = np.random.default_rng(5)
    start = datetime(2026, 1, 5, 14, tzinfo=UTC)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    bars = pd.DataFrame({"ticker": "AAA",
                         "window_start": [start + timedelta(hours=i) for i in range(50)],
                         "close": close, "avg_price": close * 0.999,
                         "volume": rng.integers(0, 1000, 50), "trade_count": 4})
    hourly = indicators_1h(bars.sample(frac=1, random_state=1))  # any input order
    ret = np.concatenate([[np.nan], close[1:] / close[:-1] - 1])
    same(hourly["return_1h"], ret)
    same(hourly["ma_3"], rolling_loop(close * 0.999, 3, np.mean))
    same(hourly["vol_3"], rolling_loop(ret, 3, lambda w: np.std(w, ddof=1)))
    assert hourly["total_volume"].tolist() == bars["volume"].tolist()


def test_planted_spikes_are_exactly_the_anomalies() -> None:
    """Quiet series with 3 planted return spikes and 2 volume spikes: exactly those 5 flags.

    The noise is uniform (bounded, |z| of a uniform value stays below ~2.5 even with a
    30-sample std), so nothing but the planted spikes can pass |z| > 3.
    """
    rng = np.random.default_rng(11)
    n = 400
    log_ret = rng.uniform(-0.01, 0.01, n)
    volume = rng.uniform(980_000, 1_020_000, n).round()
    for day, jump in ((100, 0.15), (220, -0.2), (330, 0.12)):
        log_ret[day] = jump
    for day in (150, 300):
        volume[day] = 5_000_000
    frame = pd.DataFrame({"ticker": "AAA",
                          "window_start": pd.date_range("2012-01-02", periods=n, tz="UTC"),
                          "log_return": log_ret, "volume": volume})
    frame.loc[0, "log_return"] = np.nan
    flags = anomalies(frame)
    day = (flags["window_start"] - frame["window_start"][0]).dt.days
    found = sorted(zip(flags["metric"], day, strict=True))
    assert found == [("log_return", 100), ("log_return", 220), ("log_return", 330),
                     ("volume", 150), ("volume", 300)]
    row = flags[flags["metric"] == "volume"].iloc[0]
    window = volume[120:150]
    assert row["window_mean"] == pytest.approx(window.mean())
    assert row["window_std"] == pytest.approx(window.std(ddof=1))
    assert row["z_score"] == pytest.approx((5_000_000 - window.mean()) / window.std(ddof=1))


def test_no_flags_during_the_30_day_warm_up() -> None:
    """A spike on day 20 is not flagged: fewer than 30 previous days."""
    frame = pd.DataFrame({"ticker": "AAA",
                          "window_start": pd.date_range("2012-01-02", periods=40, tz="UTC"),
                          "log_return": np.r_[np.random.default_rng(1).normal(0, .01, 20), 0.5,
                                              np.zeros(19)],
                          "volume": 1000.0})
    assert anomalies(frame).empty


@pytest.mark.parametrize("cut", [80, 81, 1500, 3269])
def test_a_tail_with_carried_state_equals_the_whole_history(cut: int) -> None:
    """Recomputing AAPL's indicators from the 40 bars before `cut` plus the recursive state
    stored in the indicator row of the tail's first bar gives the same rows from `cut` on as
    the computation over the whole history (EMA, MACD, RSI exactly; rolling windows to 1e-12)."""
    from pipeline.indicators import CARRY_COLUMNS, TAIL_BARS, indicators_1d

    bars = load_bokeh_bars(["AAPL"])
    bars["window_start"] = pd.to_datetime(bars["day"]).dt.tz_localize("UTC")
    full = indicators_1d(bars)
    first = cut - TAIL_BARS
    carry = {c: full[c].iloc[first] for c in CARRY_COLUMNS}
    tail = indicators_1d(bars.iloc[first:], carry).iloc[TAIL_BARS:].reset_index(drop=True)
    expected = full.iloc[cut:].reset_index(drop=True)
    assert len(tail) == len(expected) > 0
    for column in ("ema_12", "ema_26", "macd", "macd_signal", "macd_hist", "rsi_14",
                   "macd_fast", "rsi_avg_gain", "rsi_avg_loss", "bar_index"):
        np.testing.assert_array_equal(tail[column].to_numpy(), expected[column].to_numpy(),
                                      err_msg=column)
    for column in full.columns.drop(["ticker", "window_start"]):
        np.testing.assert_allclose(tail[column].astype(float), expected[column].astype(float),
                                   rtol=1e-12, atol=0, equal_nan=True, err_msg=column)
