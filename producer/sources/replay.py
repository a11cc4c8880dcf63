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

Each daily bar becomes four ticks at 09:30, 11:00, 14:00 and 15:59 local time
(:func:`daily_tick_zone`: New York for US listings, FX, futures and crypto; the exchange's zone
for other equities and indices, e.g. Hong Kong for ``0700.HK``), converted to UTC, so they fall
inside the bar's trade date (:func:`config.instruments.trading_date`): open first, then the two
extremes (on an up day (close >= open) the low comes first, on a down day the high: the usual
O-L-H-C / O-H-L-C path assumption), close last. Volume is split in four parts that sum
exactly to the bar's volume (whole units for a whole volume, else decimals: FX and crypto
volumes are fractional). So ``gold.bars_1d`` rebuilt from the ticks equals the input bar
exactly.

A CSV of **intraday** bars (its most common step between two rows is shorter than a day, e.g.
the hourly ``FOREX_EURUSD_1H_ASK.csv`` of ``gym-anytrading``) becomes four ticks per bar inside
the bar (:func:`intraday_bar_ticks`: its start, a quarter, a half, one second before its end),
so ``gold.bars_1m`` / ``gold.bars_1h`` rebuilt from the ticks equal 1-minute / 1-hour input
bars that start on the UTC minute / hour. Times with an offset are converted to UTC; times
without one are read as UTC.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from config.errors import SourceError
from config.instruments import asset_class, currency, trading_day_rule
from config.settings import TICKER_PATTERN, TICKER_RULE
from config.tables import DAY_S
from producer.messages import (
    BACKFILL_SOURCE,
    SCHEMA_VERSION,
    VOLUME_SCALE,
    TickMessage,
    exact_volume,
    make_tick_id,
)
from producer.sources import EXCHANGE_TZ

log = logging.getLogger(__name__)

TICK_TIMES = (time(9, 30), time(11, 0), time(14, 0), time(15, 59))
TICKS_PER_BAR = len(TICK_TIMES)
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
BAR_FRAME_COLUMNS = ["ticker", "day", "start", "seconds", "line", *BAR_COLUMNS]
"""Columns of the bar frames the loaders return (see :func:`load_csv_bars`)."""


TIME_COLUMNS = ("date", "datetime", "time", "gmt_time", "timestamp")
"""Names of a CSV's time column (lower-cased, spaces as ``_``), in the order they are looked for."""
TIME_FORMATS = ("ISO8601", "%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
                "%d.%m.%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
"""Time layouts a CSV may use (the first that reads every row wins): ISO 8601 with or without
an offset (yfinance), ``DD.MM.YYYY HH:MM:SS.fff`` (Dukascopy exports, gym-anytrading), US dates."""
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar. Prices in quote currency per unit, volume in units (shares, coins), an
    ``int`` or an exact ``Decimal``.

    A daily bar (``seconds == DAY_S``) is the session of ``day``; an intraday bar starts at
    ``start`` (UTC) and lasts ``seconds``.
    """

    ticker: str
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int | Decimal
    start: datetime | None = None
    seconds: int = DAY_S


def price_path(open_: float, high: float, low: float, close: float) -> tuple[float, ...]:
    """The four tick prices of a bar: open, the low then the high on an up bar (close >= open)
    or the reverse on a down bar, close (the usual O-L-H-C / O-H-L-C path assumption)."""
    middle = (low, high) if close >= open_ else (high, low)
    return (open_, *middle, close)


_VOLUME_STEP = Decimal(1).scaleb(-VOLUME_SCALE)


def split_volume(volume: int | Decimal) -> list[int | Decimal]:
    """``volume`` in :data:`TICKS_PER_BAR` parts that sum to it exactly: integers for a whole
    volume (an ``int``, or a whole ``Decimal``), else decimals with at most
    :data:`~producer.messages.VOLUME_SCALE` places (three equal parts rounded down, the rest
    in the last)."""
    if isinstance(volume, Decimal):
        volume = whole_or_decimal(volume)
    if isinstance(volume, int):
        quarter = volume // TICKS_PER_BAR
        return [*[quarter] * (TICKS_PER_BAR - 1), volume - quarter * (TICKS_PER_BAR - 1)]
    part = (volume / TICKS_PER_BAR).quantize(_VOLUME_STEP, rounding=ROUND_DOWN)
    return [*[part] * (TICKS_PER_BAR - 1), volume - part * (TICKS_PER_BAR - 1)]


def _four_ticks(ticker: str, event_times: Sequence[datetime], prices: tuple[float, float, float,
                float], volume: int | Decimal, seq_base: int, position: str, source: str,
                id_source: str | None) -> list[TickMessage]:
    """The four v2 ticks of one bar at ``event_times`` (UTC): its price path
    (:func:`price_path`), its volume split (:func:`split_volume`), ``seq`` = ``seq_base + k``,
    ids from ``id_source or source`` and the position ``f"{position}#{k}"``, the asset class
    and currency of the ticker (:mod:`config.instruments`)."""
    kind, quoted_in = asset_class(ticker), currency(ticker)
    return [
        TickMessage(
            schema_version=SCHEMA_VERSION,
            tick_id=make_tick_id(id_source or source, ticker, event_time, price, part,
                                 f"{position}#{k}"),
            ticker=ticker, event_time=event_time, price=float(price), volume=Decimal(part),
            source=source, seq=seq_base + k, asset_class=kind, currency=quoted_in)
        for k, (event_time, price, part) in enumerate(
            zip(event_times, price_path(*prices), split_volume(volume), strict=True))
    ]


def intraday_bar_ticks(ticker: str, start: datetime, seconds: int, open_: float, high: float,
                       low: float, close: float, volume: int | Decimal, source: str = "yfinance",
                       id_source: str | None = None) -> list[TickMessage]:
    """Four ticks whose first/max/min/last price and summed volume are an intraday bar's.

    Args:
        start: the bar's start, timezone-aware (converted to UTC).
        seconds: the bar's length (at least 4).
        source: the ticks' ``source``.
        id_source: the source their ``tick_id`` derives from (default ``source``): a backfill
            gives its ticks the replay's ids, so history already in Silver is a duplicate.

    Returns:
        Ticks at ``start``, ``start + seconds/4``, ``start + seconds/2`` and
        ``start + seconds - 1 s``; ``seq`` = epoch second of the start x 10 + k.
    """
    start = start.astimezone(UTC)
    times = [start + timedelta(seconds=offset)
             for offset in (0.0, seconds / 4, seconds / 2, seconds - 1.0)]
    return _four_ticks(ticker, times, (open_, high, low, close), volume,
                       int(start.timestamp()) * 10, start.isoformat(), source, id_source)


def bar_to_ticks(bar: Bar, source: str = "replay",
                 id_source: str | None = None) -> list[TickMessage]:
    """Turn a bar into four ticks whose OHLCV is the bar's (``source``, ``id_source``: see
    :func:`intraday_bar_ticks`).

    Returns:
        Four :class:`TickMessage` in event-time order. For a daily bar ``seq`` is
        ``day.toordinal() * 10 + k``, so it increases across days and does not depend on where
        the replay started; an intraday bar's are :func:`intraday_bar_ticks`'.
    """
    if bar.seconds < DAY_S and bar.start is not None:
        return intraday_bar_ticks(bar.ticker, bar.start, bar.seconds, bar.open, bar.high,
                                  bar.low, bar.close, bar.volume, source, id_source)
    zone = daily_tick_zone(bar.ticker)
    times = [datetime.combine(bar.day, local_time, zone).astimezone(UTC)
             for local_time in TICK_TIMES]
    return _four_ticks(bar.ticker, times, (bar.open, bar.high, bar.low, bar.close), bar.volume,
                       bar.day.toordinal() * 10, bar.day.isoformat(), source, id_source)


def daily_tick_zone(ticker: str) -> ZoneInfo:
    """Where a daily bar's four ticks go (at :data:`TICK_TIMES`, local): the exchange's time
    zone for an equity or index (``0700.HK``'s at 09:30-15:59 Hong Kong), New York for FX,
    futures and crypto. Either way inside the bar's trade date
    (:func:`config.instruments.trading_date`), so ``gold/bars_1d`` rebuilds the bar."""
    if asset_class(ticker) in ("equity", "index"):
        return ZoneInfo(trading_day_rule(ticker)[0])
    return EXCHANGE_TZ


def session_open_utc(days: pd.Series, zone: ZoneInfo = EXCHANGE_TZ) -> pd.Series:
    """09:30 in ``zone`` (default New York) of each day, in UTC (where a daily bar's first
    tick goes, :func:`daily_tick_zone`)."""
    return pd.Series([pd.Timestamp(datetime.combine(d, TICK_TIMES[0], zone)).tz_convert(UTC)
                      for d in days], index=days.index, dtype="datetime64[ns, UTC]")


def load_bokeh_bars(tickers: Sequence[str]) -> pd.DataFrame:
    """Daily bars from ``bokeh-sampledata`` for ``tickers``.

    Returns:
        DataFrame with columns ticker, day (``datetime.date``), start (the session's open,
        UTC), seconds (:data:`DAY_S`), line (0: not from a file), open, high, low, close,
        volume.

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
    frame["start"] = session_open_utc(frame["day"])
    frame["seconds"], frame["line"] = DAY_S, 0
    return frame[BAR_FRAME_COLUMNS].reset_index(drop=True)


def _parse_times(path: Path, values: pd.Series, lines: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(UTC instants, local wall-clock times) of a CSV's time column, in the first of
    :data:`TIME_FORMATS` that reads every value; times without an offset are read as UTC.

    Raises:
        SourceError: no layout reads every value; names the first line no layout reads.
    """
    text = values.astype(str).str.strip()
    local_text = text.str.replace(_OFFSET, "", regex=True)
    best: tuple[int, pd.Series] | None = None
    for layout in TIME_FORMATS:
        local = pd.to_datetime(local_text, format=layout, errors="coerce")
        if local.notna().all():
            instants = pd.to_datetime(text, format=layout, utc=True)
            return instants, local
        if best is None or local.notna().sum() > best[0]:
            best = (int(local.notna().sum()), local)
    assert best is not None
    first_bad = int(best[1].isna().to_numpy().argmax())
    raise SourceError(
        f"{path}, line {int(lines.iloc[first_bad])}: {text.iloc[first_bad]!r} is not a date "
        "or time "
        "(layouts read: ISO 8601 with or without an offset, DD.MM.YYYY[ HH:MM[:SS[.fff]]], "
        "MM/DD/YYYY[ HH:MM[:SS]])")


def _bar_seconds(path: Path, instants: pd.Series, lines: pd.Series) -> int:
    """The bars' length: the most common step between two consecutive rows (``instants`` in
    time order); 1 day when it is 23 hours or more (daily bars across a DST change). One row is
    a daily bar.

    Raises:
        SourceError: two rows have the same time, or a bar starts before the previous one
            ends (the lines are named).
    """
    steps = instants.diff().dt.total_seconds().iloc[1:]
    if steps.empty:
        return DAY_S
    if (steps == 0).any():
        position = int((steps == 0).to_numpy().argmax()) + 1
        raise SourceError(f"{path}, lines {int(lines.iloc[position - 1])} and "
                          f"{int(lines.iloc[position])}: two bars at {instants.iloc[position]} "
                          "(one row per bar)")
    seconds = int(steps.mode().iloc[0])
    if seconds >= 23 * 3600:
        return DAY_S
    short = steps < seconds
    if short.any():
        at = steps.index[short.to_numpy()][0]
        raise SourceError(f"{path}, line {int(lines[at])}: the bar at {instants[at]} starts "
                          f"{steps[at]:.0f} s after the one before, inside its {seconds} s")
    return seconds


def load_csv_bars(path: Path, ticker: str | None = None) -> pd.DataFrame:
    """Daily or intraday bars from a CSV in yfinance's layouts or plain
    ``Date|Datetime|Time, Open, High, Low, Close[, Adj Close], Volume`` columns.

    Args:
        path: the CSV file, rows in any time order (newest first is fine).
        ticker: symbol to use; default the ``Ticker`` header row of a ``yf.download`` CSV, else
            the file name without extension, upper-cased.

    Returns:
        DataFrame with columns ticker, day (``datetime.date``: a daily bar's date as written,
        an intraday bar's UTC date), start (UTC: an intraday bar's start, a daily bar's
        session open), seconds (the bars' length, :func:`_bar_seconds`; :data:`DAY_S` for
        daily bars), line (the row's line in the file), open, high, low, close, volume (an
        ``int``, or an exact ``Decimal`` when the file writes a fraction; more than
        :data:`~producer.messages.VOLUME_SCALE` decimal places are rounded, with a warning).
        Rows with an empty value (yfinance writes empty rows for some holidays) are left out
        and counted in a warning that names their lines.

    Raises:
        SourceError: the file is missing, lacks a column, has a value that is not a number or
            a time, two rows at the same time or overlapping bars (the lines are named), or no
            complete row.
    """
    if not path.is_file():
        raise SourceError(f"CSV file {path} does not exist")
    with path.open() as fh:
        head = [fh.readline().strip().split(",") for _ in range(3)]
    skip: list[int] = []
    if head[0] and head[0][0] == "Price" and len(head) > 1 and head[1][:1] == ["Ticker"]:
        # yf.download layout: Price,Close,...  / Ticker,AAPL,... / Date,,,... (Datetime,,,...
        # for intraday intervals)
        ticker = ticker or next((t for t in head[1][1:] if t), None)
        skip = [1, 2] if head[2][:1] in (["Date"], ["Datetime"]) else [1]
    frame = pd.read_csv(path, skiprows=skip, dtype=str, keep_default_na=False,
                        skip_blank_lines=False).fillna("")
    frame["line"] = frame.index + 2 + len(skip)  # 1-based, after the header row(s)
    frame = frame[frame.drop(columns="line").apply(lambda c: c.str.strip()).ne("").any(axis=1)]
    frame.columns = [c if c == "line" else str(c).strip().lower().replace(" ", "_")
                     for c in frame.columns]
    if "price" in frame.columns and not any(c in frame.columns for c in TIME_COLUMNS):
        frame = frame.rename(columns={"price": "date"})
    time_column = next((c for c in TIME_COLUMNS if c in frame.columns), "date")
    needed = [time_column, *BAR_COLUMNS]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise SourceError(
            f"{path}: missing column(s) {absent}; expected Date (or Datetime, Time), Open, "
            f"High, Low, Close, [Adj Close,] Volume (found {list(frame.columns)})"
        )
    empty = frame[needed].apply(lambda c: c.str.strip().str.lower().isin(["", "nan", "null"]))
    incomplete = empty.any(axis=1)
    if incomplete.any():
        lines = frame.loc[incomplete, "line"].tolist()
        log.warning("%s: left out %d row(s) with an empty value (lines %s%s)", path,
                    len(lines), ", ".join(map(str, lines[:5])), ", ..." if len(lines) > 5 else "")
    frame = frame[~incomplete].copy()
    if frame.empty:
        raise SourceError(f"{path}: no complete OHLCV row")
    volume_text = frame["volume"].str.strip()
    for column in BAR_COLUMNS:
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        if numbers.isna().any():
            at = numbers.index[numbers.isna().to_numpy()][0]
            raise SourceError(f"{path}, line {int(frame.at[at, 'line'])}: {column} "
                              f"{frame.at[at, column]!r} is not a number")
        frame[column] = numbers
    instants, local = _parse_times(path, frame[time_column], frame["line"])
    order = instants.sort_values(kind="stable").index  # newest-first exports are common
    frame, instants, local = frame.loc[order], instants.loc[order], local.loc[order]
    frame["seconds"] = seconds = _bar_seconds(path, instants, frame["line"])
    symbol = (ticker or path.stem).upper()
    if seconds == DAY_S:  # the trading day as written ("2020-01-02 00:00:00-05:00": the 2nd)
        frame["day"] = local.dt.date
        frame["start"] = session_open_utc(frame["day"], daily_tick_zone(symbol))
    else:
        frame["start"] = instants
        frame["day"] = instants.dt.date
    frame["volume"] = _exact_volumes(path, volume_text.loc[frame.index], frame["line"])
    if not TICKER_PATTERN.fullmatch(symbol):
        raise SourceError(
            f"{path}: {symbol!r} is not a ticker ({TICKER_RULE}); "
            "name the file after its ticker (AAPL.csv) or pass --tickers"
        )
    frame["ticker"] = symbol
    bars: pd.DataFrame = frame[BAR_FRAME_COLUMNS].reset_index(drop=True)
    return bars


def whole_or_decimal(volume: Decimal) -> int | Decimal:
    """An exact volume as a bar frame holds it: an ``int`` when it is whole, else the
    ``Decimal``."""
    return int(volume) if volume == volume.to_integral_value() else volume


def _exact_volumes(path: Path, text: pd.Series, lines: pd.Series) -> pd.Series:
    """A CSV's volume column read exactly (:func:`~producer.messages.exact_volume`): ``int``
    where the text is a whole number, else ``Decimal``.

    Raises:
        SourceError: a volume that is not finite or beyond 2**63 - 1 (the line is named).
    """
    volumes: list[int | Decimal] = []
    rounded = 0
    for value, line in zip(text, lines, strict=True):
        try:
            exact = exact_volume(value)
        except ValueError as exc:
            raise SourceError(f"{path}, line {int(line)}: {exc}") from exc
        rounded += exact != Decimal(value)
        volumes.append(whole_or_decimal(exact))
    if rounded:
        log.warning("%s: %d volume(s) have more than %d decimal places; rounded to %d", path,
                    rounded, VOLUME_SCALE, VOLUME_SCALE)
    return pd.Series(volumes, index=text.index, dtype=object)


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


def _load_bars(tickers: Sequence[str], csv_paths: Sequence[Path]) -> pd.DataFrame:
    """The bars of ``csv_paths`` (one ticker per file) or, without files, bokeh-sampledata's.

    Raises:
        SourceError: a file cannot be read, or tickers and files do not pair up.
    """
    if not csv_paths:
        return load_bokeh_bars(tickers)
    if tickers and len(tickers) != len(csv_paths):
        raise SourceError(
            f"{len(tickers)} ticker(s) for {len(csv_paths)} CSV file(s): give one "
            "ticker per file, in the same order, or none (then the ticker comes from "
            "the CSV's Ticker row or the file name)"
        )
    names = list(tickers) if tickers else [None] * len(csv_paths)
    parts = [load_csv_bars(Path(p), t) for p, t in zip(csv_paths, names, strict=True)]
    return pd.concat(parts, ignore_index=True)


def _volume(value: object) -> int | Decimal:
    """A bar frame's volume (numpy integer, ``int`` or ``Decimal``) as ``int`` or ``Decimal``."""
    return value if isinstance(value, Decimal) else int(value)  # type: ignore[call-overload]


class ReplaySource:
    """Replays daily or intraday bars as ticks, bar by bar in time order (by start: a daily
    bar's session open, an intraday bar's start), tickers interleaved.

    Args:
        tickers: symbols to replay (bokeh-sampledata default) or to name CSV files.
        csv_paths: CSV files to replay instead of bokeh-sampledata; one ticker per file, daily
            or intraday bars (see :func:`load_csv_bars`).
        limit_days: replay only the last N bars of each ticker (None = all).
        backfill: publish as ``ticklake backfill`` does: source
            :data:`~producer.messages.BACKFILL_SOURCE` (Silver applies no watermark to it),
            tick ids as the replay's (history already in Silver is a duplicate).
        first_day, last_day: keep only the bars of these days, inclusive (None: no bound).
        bars: bars already loaded (:data:`BAR_FRAME_COLUMNS`, e.g.
            :func:`producer.sources.yahoo.history_bars`) instead of ``tickers``' or the CSVs'.
    """

    name = "replay"

    def __init__(
        self,
        tickers: Sequence[str],
        csv_paths: Sequence[Path] = (),
        limit_days: int | None = None,
        backfill: bool = False,
        first_day: date | None = None,
        last_day: date | None = None,
        bars: pd.DataFrame | None = None,
    ) -> None:
        self.name = BACKFILL_SOURCE if backfill else ReplaySource.name
        if bars is None:
            bars = _load_bars(tickers, csv_paths)
        if first_day is not None:
            bars = bars[bars["day"] >= first_day]
        if last_day is not None:
            bars = bars[bars["day"] <= last_day]
        if bars.empty:
            raise SourceError(f"no bar between {first_day or 'the first day'} and "
                              f"{last_day or 'the last day'}")
        if limit_days is not None:
            bars = bars.groupby("ticker", group_keys=False).tail(limit_days)
        self.bars = bars.sort_values(["start", "ticker"], kind="stable").reset_index(drop=True)
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
                float(row.close), _volume(row.volume), row.start.to_pydatetime(),
                int(row.seconds),
            )

    def ticks(self) -> Iterator[TickMessage]:
        """Yield four ticks per bar (see the module docstring)."""
        for bar in self.iter_bars():
            yield from bar_to_ticks(bar, self.name, ReplaySource.name)
