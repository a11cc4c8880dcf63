"""Live intraday bars from Yahoo Finance (through ``yfinance``), published as ticks.

Every ``poll_s`` seconds the source asks yfinance for each ticker's bars of the current
session (``Ticker.history(period="1d"/"5d", interval=...)``, regular session only, prices as
traded: ``auto_adjust=False``) and turns each **completed** bar (its end at or before the
clock, UTC) that it has not published yet into four ticks, as the replay does for daily bars:
open at the bar's start, the two extremes at a quarter and half of the bar (low first on an up
bar), close one second before its end; the volume split in four parts that sum to the bar's
(decimals for a fractional crypto volume). Tick ids derive from the content and the bar's
start, so a bar published twice (a restart re-polls the session) has the same ids and Silver
quarantines the copies as ``duplicate_tick_id``; within one run a bar is published once.

Yahoo can fail in four ways and each is handled (``tests/unit/test_yahoo.py``):

* **a hang**: yfinance's own ``timeout`` does not bound a call whose host answers DNS and then
  stalls, so every call runs in a daemon thread with a wall-clock deadline;
* **an error** (DNS, connection, 5xx): retried with exponential back-off (tenacity), one log
  line per failure, within ``deadline_s`` per ticker and poll;
* **a rate limit** (HTTP 429, ``YFRateLimitError``): retried after ``RATE_LIMIT_WAIT_S``, or
  what is left of the deadline;
* **an empty answer** (before the open, a holiday): no bars, one info line.

When no ticker's first poll succeeds (:meth:`YahooSource.connect`, which ``ticklake produce``
runs before it needs the broker), the source raises :class:`YahooUnavailable` naming the
tickers and the last error, unless a fallback source was given: then it logs that once and
the fallback's ticks are published instead.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from tenacity import RetryCallState, Retrying, retry_if_exception

from config.errors import SourceError
from config.tables import DAY_S
from producer.messages import TickMessage, exact_volume
from producer.sources import TickSource
from producer.sources.replay import (
    BAR_FRAME_COLUMNS,
    daily_tick_zone,
    intraday_bar_ticks,
    session_open_utc,
    whole_or_decimal,
)

log = logging.getLogger(__name__)

INTERVAL_SECONDS = {"1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600,
                    "1h": 3600}
"""Yahoo's intraday bar intervals and their length in seconds."""
PERIOD = {"1m": "1d"}
"""The history period asked per interval (``5d`` for all but 1m): long enough to hold the
current session, short enough to be one small answer."""
RATE_LIMIT_WAIT_S = 30.0
"""Pause after Yahoo's "Too Many Requests" before the next attempt (capped by the deadline)."""


class YahooUnavailable(SourceError):
    """Yahoo Finance did not answer usable data for any ticker within the deadline."""


def call_with_deadline(fn: Callable[[], Any], deadline_s: float) -> Any:
    """``fn()`` in a daemon thread; its result, or its exception re-raised.

    Raises:
        TimeoutError: no result within ``deadline_s`` seconds (the thread is abandoned; being
            a daemon it does not keep the process alive).
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as err:  # noqa: BLE001 (handed to the caller)
            box.put((False, err))

    threading.Thread(target=run, daemon=True, name="yfinance-call").start()
    try:
        ok, value = box.get(timeout=max(deadline_s, 0.001))
    except queue.Empty:
        raise TimeoutError(f"no answer within {deadline_s:.1f} s") from None
    if ok:
        return value
    raise value


def _history(ticker: str, interval: str, timeout_s: float, **window: str) -> pd.DataFrame:
    """``Ticker.history`` over ``window`` (``period=`` or ``start=``/``end=``), prices as
    traded (``auto_adjust=False``), regular session; errors raised, not logged: columns Open,
    High, Low, Close, Volume, index the bars' starts (tz-aware, the exchange's zone); empty
    when Yahoo has none.

    Raises:
        yfinance.exceptions.YFRateLimitError: Yahoo answered 429.
        Exception: whatever the HTTP layer raised (DNS, connection, timeout).
    """
    import yfinance as yf
    from yfinance.exceptions import YFPricesMissingError

    yf.config.debug.hide_exceptions = False  # raise, do not log and return an empty frame
    try:
        bars: pd.DataFrame = yf.Ticker(ticker).history(
            interval=interval, auto_adjust=False, actions=False, prepost=False, repair=False,
            timeout=timeout_s, **window)
        return bars
    except YFPricesMissingError:
        return pd.DataFrame(columns=["Open", "High", "Low", "Close", "Volume"])


def yfinance_bars(ticker: str, interval: str, timeout_s: float) -> pd.DataFrame:
    """The current session's bars of ``ticker`` from yfinance (:func:`_history` over
    :data:`PERIOD`)."""
    return _history(ticker, interval, timeout_s, period=PERIOD.get(interval, "5d"))


def fetch_with_deadline(fetch: Callable[[float], pd.DataFrame], ticker: str,
                        deadline_s: float) -> pd.DataFrame:
    """``fetch(timeout_s)`` retried with back-off (tenacity: 0.5 s doubling to 8 s, 30 s after
    a rate limit) until it answers or ``deadline_s`` of wall-clock time has passed; each call
    runs under :func:`call_with_deadline`, and each failure logs one line naming ``ticker``.

    Raises:
        the last error once the deadline has passed (``TimeoutError`` for a hang).
    """
    ends_at = time.monotonic() + deadline_s

    def remaining() -> float:
        return max(ends_at - time.monotonic(), 0.0)

    def pause(state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if err is not None and _is_rate_limit(err):
            return RATE_LIMIT_WAIT_S
        return min(0.5 * 2.0 ** (state.attempt_number - 1), 8.0)

    def out_of_time(state: RetryCallState) -> bool:
        # no attempt that would have less than 0.1 s left after its pause: the error
        # reported is then the last real one, not a zero-second timeout
        return remaining() - pause(state) < 0.1

    def log_failure(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.warning("yfinance %s: attempt %d failed (%s); retrying in %.1f s", ticker,
                    state.attempt_number, _reason(err) if err else "unknown",
                    state.next_action.sleep if state.next_action else 0)

    retrying = Retrying(stop=out_of_time, wait=pause,
                        retry=retry_if_exception(lambda e: not isinstance(e, SourceError)),
                        before_sleep=log_failure, reraise=True)
    result: pd.DataFrame = retrying(lambda: call_with_deadline(
        lambda: fetch(max(remaining(), 0.1)), remaining()))
    return result


HISTORY_INTERVALS = ("1d", *INTERVAL_SECONDS)
"""Bar intervals ``ticklake backfill --source yfinance`` asks Yahoo for (Yahoo keeps 1m bars
for the last 30 days and other intraday bars for 60, daily bars for the instrument's life)."""


def yfinance_history(ticker: str, interval: str, first_day: date, last_day: date,
                     timeout_s: float) -> pd.DataFrame:
    """``ticker``'s bars from ``first_day`` to ``last_day`` inclusive (:func:`_history`)."""
    return _history(ticker, interval, timeout_s, start=first_day.isoformat(),
                    end=(last_day + timedelta(days=1)).isoformat())


def history_bars(ticker: str, frame: pd.DataFrame, interval: str) -> pd.DataFrame:
    """yfinance bars (:func:`yfinance_history`) as the replay's bar frame
    (:data:`producer.sources.replay.BAR_FRAME_COLUMNS`): a daily bar's day is its date in the
    exchange's zone and its start 09:30 in :func:`~producer.sources.replay.daily_tick_zone`
    (as a CSV's daily bar); an intraday bar starts at its index (UTC). Volumes are exact
    (:func:`bar_volume`); rows without prices (Yahoo leaves minutes without trades empty) are
    left out.
    """
    frame = frame.dropna(subset=["Open", "High", "Low", "Close"]).sort_index()
    index = pd.DatetimeIndex(frame.index)
    seconds = DAY_S if interval == "1d" else INTERVAL_SECONDS[interval]
    out = pd.DataFrame({
        "ticker": ticker, "seconds": seconds, "line": 0,
        "open": frame["Open"].astype(float).to_numpy(), "high": frame["High"].astype(float).to_numpy(),
        "low": frame["Low"].astype(float).to_numpy(), "close": frame["Close"].astype(float).to_numpy(),
        "volume": [bar_volume(v) for v in frame["Volume"]]})
    if seconds == DAY_S:
        out["day"] = [stamp.date() for stamp in index]
        out["start"] = session_open_utc(out["day"], daily_tick_zone(ticker))
    else:
        out["start"] = index.tz_convert(UTC)
        out["day"] = [stamp.date() for stamp in out["start"]]
    return out[BAR_FRAME_COLUMNS]


def bar_volume(value: float) -> int | Decimal:
    """A yfinance bar's volume, exact (:func:`producer.sources.replay.whole_or_decimal`); 0
    where Yahoo has none (NaN)."""
    return 0 if pd.isna(value) else whole_or_decimal(exact_volume(float(value)))


def _is_rate_limit(err: BaseException) -> bool:
    from yfinance.exceptions import YFRateLimitError

    return isinstance(err, YFRateLimitError)


class YahooSource:
    """Polls Yahoo Finance for completed intraday bars and yields them as ticks (unbounded).

    Args:
        tickers: Yahoo symbols (``AAPL``, ``^GSPC``, ``EURUSD=X``).
        interval: a key of :data:`INTERVAL_SECONDS`.
        poll_s: seconds between the starts of two polls.
        deadline_s: wall-clock budget of one ticker's poll, retries included.
        fallback: builds the source to use when Yahoo cannot be reached at the start.
        clock: the current time (UTC); decides which bars are complete.
        fetch: ``(ticker, interval, timeout_s) -> bars`` (default :func:`yfinance_bars`).
        max_polls: stop after this many polls (None: run until stopped).
        sleep: how to wait between polls.

    Raises:
        SourceError: an unknown interval (the message lists the allowed ones).
    """

    name = "yfinance"

    def __init__(
        self, tickers: Sequence[str], interval: str = "1m", poll_s: float = 60.0,
        deadline_s: float = 30.0, fallback: Callable[[], TickSource] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fetch: Callable[[str, str, float], pd.DataFrame] = yfinance_bars,
        max_polls: int | None = None, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval not in INTERVAL_SECONDS:
            raise SourceError(f"interval {interval!r} is not one of "
                              f"{', '.join(INTERVAL_SECONDS)}")
        if not tickers:
            raise SourceError("the yfinance source needs at least one ticker (--tickers)")
        self.tickers = list(tickers)
        self.interval, self.seconds = interval, INTERVAL_SECONDS[interval]
        self.poll_s, self.deadline_s = poll_s, deadline_s
        self.fallback, self.clock, self.fetch = fallback, clock, fetch
        self.max_polls, self.sleep = max_polls, sleep
        self.published: dict[str, set[pd.Timestamp]] = {t: set() for t in self.tickers}
        self._pending: list[TickMessage] | None = None
        self._started = time.monotonic()

    def expected_count(self) -> int | None:
        """None: a live source does not end."""
        return None

    def poll(self, ticker: str) -> pd.DataFrame:
        """The ticker's bars, retried within :attr:`deadline_s` (:func:`fetch_with_deadline`).

        Raises:
            the last error once the deadline has passed.
        """
        return fetch_with_deadline(lambda timeout: self.fetch(ticker, self.interval, timeout),
                                   ticker, self.deadline_s)

    def new_bar_ticks(self, ticker: str, bars: pd.DataFrame) -> list[TickMessage]:
        """Ticks of the completed bars of ``bars`` not yet published (rows with a missing
        price are skipped: Yahoo leaves minutes without trades empty)."""
        now = pd.Timestamp(self.clock())
        ticks: list[TickMessage] = []
        bars = bars.sort_index()
        row: Any
        for begin, row in zip(pd.DatetimeIndex(bars.index), bars.itertuples(), strict=True):
            if begin + pd.Timedelta(seconds=self.seconds) > now:
                continue  # still forming
            prices = (row.Open, row.High, row.Low, row.Close)
            if begin in self.published[ticker] or any(pd.isna(p) for p in prices):
                continue
            volume = bar_volume(row.Volume)
            open_, high, low, close = (float(p) for p in prices)
            ticks += intraday_bar_ticks(ticker, begin.to_pydatetime(), self.seconds, open_, high,
                                        low, close, volume, self.name)
            self.published[ticker].add(begin)
        horizon = now - pd.Timedelta(days=7)  # keep the memory of published bars bounded
        self.published[ticker] = {b for b in self.published[ticker] if b >= horizon}
        return ticks

    def poll_all(self) -> tuple[list[TickMessage], dict[str, BaseException]]:
        """One poll of every ticker: the new bars' ticks, and the error of each ticker whose
        poll failed (logged, one line each)."""
        errors: dict[str, BaseException] = {}
        batch: list[TickMessage] = []
        for ticker in self.tickers:
            try:
                bars = self.poll(ticker)
            except Exception as err:  # noqa: BLE001 (reported; the source goes on)
                errors[ticker] = err
                log.warning("yfinance %s: no answer this poll (%s)", ticker, _reason(err))
                continue
            if bars.empty:
                log.info("yfinance %s: no %s bars yet (market closed?)", ticker, self.interval)
            batch += self.new_bar_ticks(ticker, bars)
        return batch, errors

    def connect(self) -> TickSource:
        """The first poll, before anything is published: this source with the first ticks
        pending, or the fallback source when no ticker answered.

        Raises:
            YahooUnavailable: no ticker answered and there is no fallback (the message names
                the tickers, the deadline and the last error).
        """
        batch, errors = self.poll_all()
        if len(errors) == len(self.tickers):
            reason = _reason(next(reversed(errors.values())))
            if self.fallback is None:
                raise YahooUnavailable(
                    f"Yahoo Finance gave no bars for {', '.join(self.tickers)} within "
                    f"{self.deadline_s:g} s per ticker ({reason}); check the network, or go on "
                    "without it with --fallback synthetic|replay")
            log.warning("Yahoo Finance unreachable (%s): publishing the fallback source "
                        "instead", reason)
            return self.fallback()
        self._pending = batch
        self._started = time.monotonic()
        return self

    def ticks(self) -> Iterator[TickMessage]:
        """The first poll's ticks (:meth:`connect`, run here if it was not), then every
        ``poll_s`` seconds the new completed bars' ticks, until ``max_polls``.

        Raises:
            YahooUnavailable: see :meth:`connect`.
        """
        if self._pending is None:
            source = self.connect()
            if source is not self:
                yield from source.ticks()
                return
        polls = 1
        yield from self._pending or []
        self._pending = []
        while self.max_polls is None or polls < self.max_polls:
            self.sleep(max(self.poll_s - (time.monotonic() - self._started), 0.0))
            self._started = time.monotonic()
            batch, _ = self.poll_all()
            polls += 1
            yield from batch


def _reason(err: BaseException) -> str:
    """``Type: first line of the message`` of an error, for one-line logs."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def backfill_bars(
    tickers: Sequence[str], interval: str, first_day: date, last_day: date, deadline_s: float,
    fetch: Callable[[str, str, date, date, float], pd.DataFrame] = yfinance_history,
) -> pd.DataFrame:
    """The bars of ``tickers`` from ``first_day`` to ``last_day`` from Yahoo, for
    ``ticklake backfill --source yfinance`` (:func:`history_bars` of each ticker, one frame).

    Args:
        interval: one of :data:`HISTORY_INTERVALS`.
        deadline_s: wall-clock budget per ticker, retries included (:func:`fetch_with_deadline`).
        fetch: ``(ticker, interval, first_day, last_day, timeout_s) -> bars``.

    Raises:
        SourceError: an unknown interval, or ``first_day`` after ``last_day``.
        YahooUnavailable: a ticker gave no answer within the deadline (the message names it,
            the deadline and the error).
    """
    if interval not in HISTORY_INTERVALS:
        raise SourceError(f"interval {interval!r} is not one of {', '.join(HISTORY_INTERVALS)}")
    if first_day > last_day:
        raise SourceError(f"--from {first_day} is after --to {last_day}")
    frames = []
    for ticker in tickers:
        def one(timeout_s: float, symbol: str = ticker) -> pd.DataFrame:
            return fetch(symbol, interval, first_day, last_day, timeout_s)

        try:
            frame = fetch_with_deadline(one, ticker, deadline_s)
        except Exception as err:  # noqa: BLE001 (one line naming the cause)
            raise YahooUnavailable(
                f"Yahoo Finance gave no {interval} bars of {ticker} within {deadline_s:g} s "
                f"({_reason(err)}); check the network, or backfill from a CSV with --csv") from err
        log.info("yfinance %s: %d %s bars from %s to %s", ticker, len(frame), interval,
                 first_day, last_day)
        frames.append(history_bars(ticker, frame, interval))
    return pd.concat(frames, ignore_index=True)
