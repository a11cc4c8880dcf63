"""Replay real daily OHLCV bars as ticks.

Inputs:

* the daily bars shipped in ``bokeh-sampledata`` (AAPL, IBM, MSFT 2000-2013, GOOG 2004-2013,
  FB 2012-2013; Quandl WIKI prices, public domain; open/high/low/close/volume *as traded*,
  not adjusted for splits), the default;
* any CSV written by ``yfinance`` (``yf.download(...).to_csv`` with its two- or three-row
  header, or ``Ticker.history(...).to_csv``) or any CSV with columns
  ``Date, Open, High, Low, Close[, Adj Close], Volume``; one file per ticker, the ticker from
  the CSV's ``Ticker`` header row, from ``tickers`` or from the file name.

Ticks carry the prices of the input's Open/High/Low/Close columns unchanged (for
bokeh-sampledata: as traded; for a yfinance CSV: whatever yfinance wrote, split- and
dividend-adjusted by default since yfinance 0.2.51). ``Adj Close`` is never used.

Each bar becomes four ticks inside the regular US session (America/New_York, converted to UTC):
open at 09:30, then the two extremes at 11:00 and 14:00, close at 15:59. On an up day
(close >= open) the low comes first, on a down day the high (the usual O-L-H-C / O-H-L-C path
assumption). Volume is split in four integer parts that sum exactly to the bar's volume. So
``gold.bars_1d`` rebuilt from the ticks equals the input bar exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd

from config.errors import SourceError
from config.settings import TICKER_PATTERN, TICKER_RULE
from producer.messages import SCHEMA_VERSION, TickMessage, make_tick_id
from producer.sources import EXCHANGE_TZ

log = logging.getLogger(__name__)

TICK_TIMES = (time(9, 30), time(11, 0), time(14, 0), time(15, 59))
TICKS_PER_BAR = len(TICK_TIMES)
BAR_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Bar:
    """One daily OHLCV bar. Prices in quote currency per share, volume in shares."""

    ticker: str
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int


def price_path(open_: float, high: float, low: float, close: float) -> tuple[float, ...]:
    """The four tick prices of a bar: open, the low then the high on an up bar (close >= open)
    or the reverse on a down bar, close (the usual O-L-H-C / O-H-L-C path assumption)."""
    middle = (low, high) if close >= open_ else (high, low)
    return (open_, *middle, close)


def split_volume(volume: int) -> list[int]:
    """``volume`` in :data:`TICKS_PER_BAR` integer parts that sum to it exactly."""
    quarter = volume // TICKS_PER_BAR
    return [quarter] * (TICKS_PER_BAR - 1) + [volume - quarter * (TICKS_PER_BAR - 1)]


def bar_to_ticks(bar: Bar, source: str = "replay") -> list[TickMessage]:
    """Turn a daily bar into four ticks whose OHLCV is the bar's.

    Returns:
        Four :class:`TickMessage` in event-time order; ``seq`` is ``day.toordinal() * 10 + k``
        so it increases across days and does not depend on where the replay started.
    """
    prices = price_path(bar.open, bar.high, bar.low, bar.close)
    volumes = split_volume(bar.volume)
    ticks = []
    for k, (local_time, price, volume) in enumerate(zip(TICK_TIMES, prices, volumes, strict=True)):
        event_time = datetime.combine(bar.day, local_time, EXCHANGE_TZ).astimezone(UTC)
        ticks.append(
            TickMessage(
                schema_version=SCHEMA_VERSION,
                tick_id=make_tick_id(
                    source, bar.ticker, event_time, price, volume, f"{bar.day.isoformat()}#{k}"
                ),
                ticker=bar.ticker,
                event_time=event_time,
                price=float(price),
                volume=int(volume),
                source=source,
                seq=bar.day.toordinal() * 10 + k,
            )
        )
    return ticks


def load_bokeh_bars(tickers: Sequence[str]) -> pd.DataFrame:
    """Daily bars from ``bokeh-sampledata`` for ``tickers``.

    Returns:
        DataFrame with columns ticker, day (``datetime.date``), open, high, low, close, volume.

    Raises:
        SourceError: a ticker is not in the sample data (the message lists those that are).
    """
    from bokeh_sampledata import stocks

    data = stocks.data
    available = sorted(data["ticker"].unique())
    missing = [t for t in tickers if t not in available]
    if missing:
        raise SourceError(
            f"tickers {missing} are not in bokeh-sampledata; available: {available}. "
            "Pass --csv FILE for other tickers."
        )
    frame = data[data["ticker"].isin(list(tickers))].copy()
    frame["day"] = frame["date"].dt.date
    return frame[["ticker", "day", *BAR_COLUMNS]].reset_index(drop=True)


def load_csv_bars(path: Path, ticker: str | None = None) -> pd.DataFrame:
    """Daily bars from a CSV in yfinance's layouts or a plain Date/Open/High/Low/Close/Volume.

    Args:
        path: the CSV file.
        ticker: symbol to use; default the ``Ticker`` header row of a ``yf.download`` CSV, else
            the file name without extension, upper-cased.

    Returns:
        DataFrame with columns ticker, day, open, high, low, close, volume. Rows with a
        missing value (yfinance writes NaN rows for some holidays) are left out and counted
        in a warning.

    Raises:
        SourceError: the file is missing, has no Date/Open/High/Low/Close/Volume columns, or
            no complete row.
    """
    if not path.is_file():
        raise SourceError(f"CSV file {path} does not exist")
    with path.open() as fh:
        head = [fh.readline().strip().split(",") for _ in range(3)]
    skip: list[int] = []
    if head[0] and head[0][0] == "Price" and len(head) > 1 and head[1][:1] == ["Ticker"]:
        # yf.download layout: Price,Close,...  / Ticker,AAPL,... / Date,,,...
        ticker = ticker or next((t for t in head[1][1:] if t), None)
        skip = [1, 2] if head[2][:1] == ["Date"] else [1]
    frame = pd.read_csv(path, skiprows=skip)
    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    if "price" in frame.columns and "date" not in frame.columns:
        frame = frame.rename(columns={"price": "date"})
    needed = ["date", *BAR_COLUMNS]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise SourceError(
            f"{path}: missing column(s) {absent}; expected Date, Open, High, Low, Close, "
            f"[Adj Close,] Volume (found {list(frame.columns)})"
        )
    for column in BAR_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    incomplete = frame[needed].isna().any(axis=1)
    if incomplete.any():
        log.warning("%s: left out %d row(s) with missing values", path, int(incomplete.sum()))
    frame = frame[~incomplete].copy()
    if frame.empty:
        raise SourceError(f"{path}: no complete OHLCV row")
    # "2020-01-02", "2020-01-02 00:00:00-05:00": the date part is the trading day.
    frame["day"] = [date.fromisoformat(str(d).strip()[:10]) for d in frame["date"]]
    frame["volume"] = frame["volume"].round().astype("int64")
    symbol = (ticker or path.stem).upper()
    if not TICKER_PATTERN.fullmatch(symbol):
        raise SourceError(
            f"{path}: {symbol!r} is not a ticker ({TICKER_RULE}); "
            "name the file after its ticker (AAPL.csv) or pass --tickers"
        )
    frame["ticker"] = symbol
    return frame[["ticker", "day", *BAR_COLUMNS]].reset_index(drop=True)


def check_bars(bars: pd.DataFrame) -> int:
    """Count (and log) bars whose OHLC is inconsistent (high < max(open, close) etc.)."""
    bad = (
        (bars["high"] < bars[["open", "close"]].max(axis=1))
        | (bars["low"] > bars[["open", "close"]].min(axis=1))
        | (bars["volume"] < 0)
    )
    if bad.any():
        log.warning(
            "%d bar(s) have high < max(open, close), low > min(open, close) or volume < 0; "
            "their Gold bar will show the ticks' true extremes (first: %s)",
            int(bad.sum()),
            bars[bad].iloc[0].to_dict(),
        )
    return int(bad.sum())


class ReplaySource:
    """Replays daily bars as ticks, bar by bar in date order, tickers interleaved by day.

    Args:
        tickers: symbols to replay (bokeh-sampledata default) or to name CSV files.
        csv_paths: CSV files to replay instead of bokeh-sampledata; one ticker per file.
        limit_days: replay only the last N days of each ticker (None = all).
    """

    name = "replay"

    def __init__(
        self,
        tickers: Sequence[str],
        csv_paths: Sequence[Path] = (),
        limit_days: int | None = None,
    ) -> None:
        if csv_paths:
            if tickers and len(tickers) != len(csv_paths):
                raise SourceError(
                    f"{len(tickers)} ticker(s) for {len(csv_paths)} CSV file(s): give one "
                    "ticker per file, in the same order, or none (then the ticker comes from "
                    "the CSV's Ticker row or the file name)"
                )
            names = list(tickers) if tickers else [None] * len(csv_paths)
            parts = [load_csv_bars(Path(p), t) for p, t in zip(csv_paths, names, strict=True)]
            bars = pd.concat(parts, ignore_index=True)
        else:
            bars = load_bokeh_bars(tickers)
        if limit_days is not None:
            bars = bars.groupby("ticker", group_keys=False).tail(limit_days)
        self.bars = bars.sort_values(["day", "ticker"], kind="stable").reset_index(drop=True)
        check_bars(self.bars)

    def expected_count(self) -> int:
        """Number of ticks the replay yields (four per bar)."""
        return len(self.bars) * TICKS_PER_BAR

    def iter_bars(self) -> Iterator[Bar]:
        """The input bars, in replay order."""
        row: Any
        for row in self.bars.itertuples(index=False):
            yield Bar(
                row.ticker, row.day, float(row.open), float(row.high), float(row.low),
                float(row.close), int(row.volume),
            )

    def ticks(self) -> Iterator[TickMessage]:
        """Yield four ticks per bar (see the module docstring)."""
        for bar in self.iter_bars():
            yield from bar_to_ticks(bar, self.name)
