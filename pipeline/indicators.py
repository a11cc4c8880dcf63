"""Technical indicators and anomaly flags over one ticker's bars (pure pandas functions).

Each function takes one ticker's bars in ``window_start`` order and recomputes every row from
the whole history, so a result never depends on micro-batch boundaries (incremental = batch).
Rows inside an indicator's warm-up are null. Conventions follow TA-Lib (the reference in the
tests) where TA-Lib has the indicator:

* SMA n: mean of the last n closes; null for the first n-1 rows.
* EMA n: alpha = 2 / (n + 1), seeded with the SMA of the first n closes at row n-1.
* MACD (12, 26, 9): EMA12 - EMA26 where, as in TA-Lib, both EMAs start at row 25 (the fast
  one seeded with the SMA of closes 14..25); signal = EMA9 of MACD seeded with the SMA of its
  first 9 values; histogram = MACD - signal. All three are null for the first 33 rows.
* Bollinger Bands (20, 2): SMA20 +- 2 population standard deviations (ddof=0) of close
  (Bollinger, "Bollinger on Bollinger Bands", 2001); null for the first 19 rows.
* RSI 14, Wilder's smoothing (Wilder, "New Concepts in Technical Trading Systems", 1978): the
  first average gain/loss is the simple mean of the first 14 changes, then
  ``avg = (avg_prev * 13 + x) / 14``; RSI = 100 - 100 / (1 + avg_gain / avg_loss), 100 when
  avg_loss is 0; null for the first 14 rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from config.tables import GOLD_ANOMALIES, GOLD_INDICATORS_1D, GOLD_INDICATORS_1H

TRADING_DAYS_PER_YEAR = 252
ANOMALY_WINDOW = 30
ANOMALY_Z = 3.0

INDICATOR_1D_COLUMNS: list[str] = GOLD_INDICATORS_1D.schema.names
"""Columns of :func:`indicators_1d`: those of ``gold/indicators_1d`` (config/tables.py)."""
INDICATOR_1H_COLUMNS: list[str] = GOLD_INDICATORS_1H.schema.names
"""Columns of :func:`indicators_1h`: those of ``gold/indicators_1h``."""
ANOMALY_COLUMNS: list[str] = GOLD_ANOMALIES.schema.names
"""Columns of :func:`anomalies`: those of ``gold/anomalies``."""


CARRY_COLUMNS = ("bar_index", "ema_12", "ema_26", "macd_fast", "macd_signal", "rsi_avg_gain",
                 "rsi_avg_loss")
"""Recursive state kept in each ``gold/indicators_1d`` row, so a later recomputation can
start from a bounded tail of bars instead of the whole history."""
TAIL_BARS = 40
"""Bars before the first recomputed bar that a tail recomputation reads (the longest window,
30 log returns, needs 31; every recursive indicator is seeded by row 33)."""
MACD_WARM_UP = 26 + 9 - 2
"""First row (0-based) with MACD values (TA-Lib: 33)."""


def windowed(values: pd.Series, n: int, statistic: str, ddof: int = 0) -> pd.Series:
    """A rolling statistic over the last ``n`` values, each window computed on its own values
    (not by updating a running sum), so a window's result does not depend on where the series
    starts: a tail recomputation gives the same bits as the whole history. NaN until ``n``
    values exist, and wherever a window holds a NaN (as pandas' ``rolling(n)``).

    Args:
        statistic: ``mean``, ``std`` (with ``ddof``) or ``median``.
    """
    x = values.to_numpy(dtype=float)
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        if statistic == "mean":
            result = windows.mean(axis=1)
        elif statistic == "std":
            result = windows.std(axis=1, ddof=ddof)
        else:
            result = np.median(windows, axis=1)
        out[n - 1:] = result
    return pd.Series(out, index=values.index)


def _ema(x: np.ndarray, n: int, start: int, base: int, carried: float | None) -> np.ndarray:
    """EMA over ``x`` (whose row 0 is absolute row ``base``) with alpha 2/(n+1), seeded by the
    SMA of absolute rows ``start..start+n-1`` at row start+n-1, or continued from ``carried``,
    its value at absolute row ``base``."""
    out = np.full(len(x), np.nan)
    alpha = 2.0 / (n + 1)
    if carried is not None and not np.isnan(carried):
        out[0], begin = carried, 1
    else:
        first = start + n - 1 - base
        if first < 0 or first >= len(x):
            return out
        out[first], begin = x[first - n + 1:first + 1].mean(), first + 1
    for i in range(begin, len(x)):
        out[i] = alpha * x[i] + (1 - alpha) * out[i - 1]
    return out


def ema(values: pd.Series, n: int, start: int = 0) -> pd.Series:
    """EMA with alpha 2/(n+1) seeded by the SMA of ``values[start:start+n]`` at row start+n-1.

    Rows before the seed are NaN. ``values`` must have no NaN from ``start`` on.
    """
    return pd.Series(_ema(values.to_numpy(dtype=float), n, start, 0, None), index=values.index)


def _rsi(x: np.ndarray, n: int, base: int, carried: tuple[float, float] | None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder RSI over ``x`` (row 0 = absolute row ``base``); returns (rsi, avg_gain, avg_loss).

    ``carried`` is (avg_gain, avg_loss) at absolute row ``base``; without it the first
    averages are the means of the first n changes, at absolute row n (``base`` must be 0).
    """
    rsi, gains, losses = (np.full(len(x), np.nan) for _ in range(3))
    change = np.diff(x, prepend=np.nan)  # change[i]: from row i-1 to row i
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    if carried is not None and not np.isnan(carried[0]):
        first = 0
        avg_gain, avg_loss = carried
    elif base == 0 and len(x) > n:
        first = n
        avg_gain, avg_loss = gain[1:n + 1].mean(), loss[1:n + 1].mean()
    else:
        return rsi, gains, losses
    gains[first], losses[first] = avg_gain, avg_loss
    for i in range(first + 1, len(x)):
        avg_gain = (avg_gain * (n - 1) + gain[i]) / n
        avg_loss = (avg_loss * (n - 1) + loss[i]) / n
        gains[i], losses[i] = avg_gain, avg_loss
    valid = ~np.isnan(gains)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + gains / losses)
    rsi[valid] = np.where(losses[valid] == 0, 100.0, value[valid])
    return rsi, gains, losses


def rsi_wilder(close: pd.Series, n: int = 14) -> pd.Series:
    """RSI with Wilder's smoothing (see the module docstring); NaN for the first n rows."""
    return pd.Series(_rsi(close.to_numpy(dtype=float), n, 0, None)[0], index=close.index)


def indicators_1d(bars: pd.DataFrame, carry: dict[str, float] | None = None) -> pd.DataFrame:
    """Daily indicators of one ticker.

    Args:
        bars: one ticker's ``gold/bars_1d`` rows (ticker, window_start UTC, close, volume), any
            order: its whole history, or (with ``carry``) a tail of it.
        carry: the :data:`CARRY_COLUMNS` of the stored indicator row of ``bars``' first bar
            (its absolute ``bar_index`` and recursive state). Rows whose rolling windows reach
            before the tail's start are not valid then: keep only rows from
            ``TAIL_BARS`` on.

    Returns:
        One row per bar with :data:`INDICATOR_1D_COLUMNS`:
        ``simple_return`` = close/prev_close - 1 and ``log_return`` = ln(close/prev_close)
        (null on the first row); ``sma_7/14/30``; ``ema_12/26``; ``macd``, ``macd_signal``,
        ``macd_hist``; ``bb_middle/upper/lower``; ``rsi_14`` (see the module docstring);
        ``volatility_14/30`` = sample standard deviation (ddof=1) of the last 14/30 daily log
        returns x sqrt(252), annualised (null until 14/30 returns exist);
        ``vol_moving_avg`` = mean volume (shares) of the last 30 bars; ``adj_close_rolling_med``
        = median close of the last 30 bars (the input's close: as traded for replayed
        bokeh-sampledata; the name is kept from the original specification); and the
        recursive state :data:`CARRY_COLUMNS`.
    """
    df = bars.sort_values("window_start").reset_index(drop=True)
    close = df["close"].astype(float)
    x = close.to_numpy()
    base = int(carry["bar_index"]) if carry else 0
    state = carry or {}
    out = pd.DataFrame({"ticker": df["ticker"], "window_start": df["window_start"],
                        "close": close, "volume": df["volume"].astype("int64")})
    out["simple_return"] = close / close.shift(1) - 1
    out["log_return"] = np.log(close / close.shift(1))
    for n in (7, 14, 30):
        out[f"sma_{n}"] = windowed(close, n, "mean")
    out["ema_12"] = _ema(x, 12, 0, base, state.get("ema_12"))
    out["ema_26"] = _ema(x, 26, 0, base, state.get("ema_26"))
    out["macd_fast"] = _ema(x, 12, 26 - 12, base, state.get("macd_fast"))
    macd = out["macd_fast"] - out["ema_26"]
    index = out.index + base
    signal = _ema(macd.to_numpy(), 9, 25, base, state.get("macd_signal"))
    out["macd"] = macd.where(index >= MACD_WARM_UP)
    out["macd_signal"] = signal
    out["macd_hist"] = (macd - signal).where(index >= MACD_WARM_UP)
    middle, std = windowed(close, 20, "mean"), windowed(close, 20, "std", ddof=0)
    out["bb_middle"], out["bb_upper"], out["bb_lower"] = middle, middle + 2 * std, middle - 2 * std
    carried_rsi = (state["rsi_avg_gain"], state["rsi_avg_loss"]) if carry else None
    out["rsi_14"], out["rsi_avg_gain"], out["rsi_avg_loss"] = _rsi(x, 14, base, carried_rsi)
    for n in (14, 30):
        out[f"volatility_{n}"] = windowed(out["log_return"], n, "std", ddof=1) * math.sqrt(
            TRADING_DAYS_PER_YEAR)
    out["vol_moving_avg"] = windowed(df["volume"].astype(float), 30, "mean")
    out["adj_close_rolling_med"] = windowed(close, 30, "median")
    out["bar_index"] = np.arange(len(out), dtype="int64") + base
    return out[INDICATOR_1D_COLUMNS]


def indicators_1h(bars: pd.DataFrame) -> pd.DataFrame:
    """Hourly analytics of one ticker from its ``gold/bars_1h`` rows.

    Returns:
        :data:`INDICATOR_1H_COLUMNS`: ``avg_price`` (mean tick price in the hour),
        ``total_volume`` (shares), ``trades`` (ticks); ``return_1h`` = close / close of the
        previous hourly bar - 1 (previous bar, across session gaps; null on the first);
        ``ma_3`` = mean avg_price of the last 3 bars; ``vol_3`` = sample standard deviation
        (ddof=1) of the last 3 ``return_1h`` values (not annualised).
    """
    df = bars.sort_values("window_start").reset_index(drop=True)
    close = df["close"].astype(float)
    out = pd.DataFrame({"ticker": df["ticker"], "window_start": df["window_start"],
                        "avg_price": df["avg_price"].astype(float),
                        "total_volume": df["volume"].astype("int64"),
                        "trades": df["trade_count"].astype("int64")})
    out["return_1h"] = close / close.shift(1) - 1
    out["ma_3"] = windowed(out["avg_price"], 3, "mean")
    out["vol_3"] = windowed(out["return_1h"], 3, "std", ddof=1)
    return out[INDICATOR_1H_COLUMNS]


def anomalies(daily: pd.DataFrame, window: int = ANOMALY_WINDOW,
              threshold: float = ANOMALY_Z) -> pd.DataFrame:
    """Flag days whose log return or volume is more than ``threshold`` standard deviations
    from the mean of the ``window`` previous days (one ticker).

    z = (x_t - mean(x_{t-window..t-1})) / std(x_{t-window..t-1}), sample std (ddof=1); the
    current day is not in its own window, so a spike does not hide itself. No flags until
    ``window`` previous values exist, nor where the window's std is 0.

    Args:
        daily: one ticker's :func:`indicators_1d` rows (log_return, volume).

    Returns:
        :data:`ANOMALY_COLUMNS`, one row per flagged (day, metric); ``metric`` is
        ``log_return`` or ``volume``.
    """
    df = daily.sort_values("window_start").reset_index(drop=True)
    found = []
    for metric in ("log_return", "volume"):
        x = df[metric].astype(float)
        past = x.shift(1)
        mean, std = windowed(past, window, "mean"), windowed(past, window, "std", ddof=1)
        z = (x - mean) / std.where(std > 0)
        hit = z.abs() > threshold
        found.append(pd.DataFrame({
            "ticker": df["ticker"][hit], "window_start": df["window_start"][hit],
            "metric": metric, "value": x[hit], "window_mean": mean[hit],
            "window_std": std[hit], "z_score": z[hit],
        }))
    return pd.concat(found, ignore_index=True)[ANOMALY_COLUMNS]
