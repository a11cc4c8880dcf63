"""Synthetic ticks: seeded geometric Brownian motion, for live demos and load.

Price follows GBM (Black-Scholes dynamics): ``S_{t+dt} = S_t * exp((mu - sigma^2/2) dt +
sigma sqrt(dt) Z)`` with ``Z ~ N(0, 1)``, ``dt`` in years (one tick interval over 252 trading
days of 6.5 hours). Volumes are ``1 + Poisson(mean_volume_shares)``. Event time comes from the
injected clock, so a test can drive time without sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

import numpy as np

from config.calendar import (
    EXCHANGE,
    EXCHANGE_TZ,
    calendar_name,
    in_session,
    session_bounds,
    trading_calendar_tz,
)
from config.errors import ConfigError
from config.instruments import asset_class, currency
from producer.messages import SCHEMA_VERSION, TickMessage, make_tick_id
from producer.sources import Clock

SECONDS_PER_TRADING_YEAR = 252 * 6.5 * 3600


def utc_now() -> datetime:
    """The wall clock, UTC, timezone-aware."""
    return datetime.now(UTC)


class MarketClock:
    """Simulated event time inside the sessions of one trading calendar (``config.calendar``;
    default XNYS: 09:30-16:00 America/New_York, weekends, exchange holidays and 13:00 early
    closes skipped; ``24/7`` for crypto never closes, ``24/5`` for FX skips weekends).

    Each call advances ``step_s`` seconds of session time; at a session's close it jumps to the
    next session's open. Returned times are UTC and never later than ``now()``, so they are not
    rejected as future ticks. Lunch breaks (Hong Kong, Tokyo) are not modelled.

    Args:
        start: first event time; moved to the next session's open if outside one.
        step_s: session seconds between two calls (> 0).
        now: the wall clock (UTC).
        calendar: the ``exchange_calendars`` name (:func:`config.calendar.calendar_name`).

    Raises:
        ConfigError: ``step_s <= 0``, ``start`` is naive, or outside the trading calendar.
    """

    def __init__(self, start: datetime, step_s: float = 1.0, now: Clock = utc_now,
                 calendar: str = EXCHANGE) -> None:
        if step_s <= 0:
            raise ConfigError(f"step_s={step_s} must be > 0")
        if start.tzinfo is None:
            raise ConfigError("start must be timezone-aware")
        self.step = timedelta(seconds=step_s)
        self.now = now
        self.calendar = calendar
        self.current = in_session(start, calendar)

    @classmethod
    def days_back(cls, trading_days: int, step_s: float = 1.0, now: Clock = utc_now,
                  calendar: str = EXCHANGE) -> MarketClock:
        """A clock starting at the open of the session ``trading_days`` sessions of
        ``calendar`` before today's (in the calendar's time zone)."""
        day = now().astimezone(trading_calendar_tz(calendar)).date()
        while trading_days > 0:
            day -= timedelta(days=1)
            if session_bounds(day, calendar) is not None:
                trading_days -= 1
        bounds = session_bounds(day, calendar)
        start = bounds[0] if bounds else datetime.combine(day, clock_time(9, 30), EXCHANGE_TZ)
        return cls(start, step_s, now, calendar)

    def __call__(self) -> datetime:
        stamp = self.current
        self.current = in_session(self.current + self.step, self.calendar)
        return min(stamp, self.now())


def market_clocks(tickers: Sequence[str], trading_days: int, step_s: float = 1.0,
                  now: Clock = utc_now) -> dict[str, Clock]:
    """One :class:`MarketClock` per trading calendar of ``tickers``
    (:func:`config.calendar.calendar_name`: AAPL and MSFT share XNYS's, BTC-USD runs on 24/7,
    EURUSD=X on 24/5), each starting ``trading_days`` of its sessions ago; ticker -> its clock."""
    by_calendar: dict[str, Clock] = {}
    clocks: dict[str, Clock] = {}
    for ticker in tickers:
        name = calendar_name(ticker)
        if name not in by_calendar:
            by_calendar[name] = MarketClock.days_back(trading_days, step_s, now, name)
        clocks[ticker] = by_calendar[name]
    return clocks


class SyntheticSource:
    """Seeded GBM ticks for ``tickers``, round-robin, one tick per ticker per step.

    Args:
        tickers: symbols.
        seed: RNG seed; the same seed and clock give the same ticks and tick ids.
        rate_per_s: ticks per second over all tickers (pacing uses ``sleep``); None = as fast
            as possible.
        count: stop after this many ticks; None = run until the caller stops.
        start_price: initial price of every ticker, > 0.
        mu: annual drift; sigma: annual volatility (> 0).
        mean_volume_shares: mean shares per tick.
        clock: returns the event time of each tick (UTC).
        clocks: per-ticker clocks (:func:`market_clocks`), used instead of ``clock`` for the
            tickers they name.
        sleep, monotonic: pacing functions, injectable so tests need no wall-clock time.

    Raises:
        ConfigError: a parameter is out of range (the message names it and the range).
    """

    name = "synthetic"

    def __init__(
        self,
        tickers: Sequence[str],
        seed: int = 42,
        rate_per_s: float | None = None,
        count: int | None = None,
        start_price: float = 100.0,
        mu: float = 0.05,
        sigma: float = 0.3,
        mean_volume_shares: float = 200.0,
        clock: Clock = utc_now,
        clocks: Mapping[str, Clock] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s is not None and not 0 < rate_per_s <= 1_000_000:
            raise ConfigError(f"rate_per_s={rate_per_s} is out of range (0, 1000000]")
        if count is not None and count < 0:
            raise ConfigError(f"count={count} must be >= 0")
        if not start_price > 0 or not sigma > 0:
            raise ConfigError(f"start_price={start_price} and sigma={sigma} must be > 0")
        self.tickers = list(tickers)
        self.seed = seed
        self.rate_per_s = rate_per_s
        self.count = count
        self.start_price = start_price
        self.mu = mu
        self.sigma = sigma
        self.mean_volume_shares = mean_volume_shares
        self.clock = clock
        self.clocks = dict(clocks or {})
        self.sleep = sleep
        self.monotonic = monotonic

    def expected_count(self) -> int | None:
        """``count`` (None when unbounded)."""
        return self.count

    def ticks(self) -> Iterator[TickMessage]:
        """Yield GBM ticks until ``count`` is reached (forever when None)."""
        rng = np.random.default_rng(self.seed)
        prices = {t: self.start_price for t in self.tickers}
        interval_s = 1.0 / self.rate_per_s if self.rate_per_s else 0.0
        dt_years = max(interval_s * len(self.tickers), 1.0) / SECONDS_PER_TRADING_YEAR
        drift = (self.mu - 0.5 * self.sigma**2) * dt_years
        diffusion = self.sigma * math.sqrt(dt_years)
        seq = 0
        kinds = {t: asset_class(t) for t in self.tickers}
        currencies = {t: currency(t) for t in self.tickers}
        next_due = self.monotonic()
        while self.count is None or seq < self.count:
            ticker = self.tickers[seq % len(self.tickers)]
            prices[ticker] *= math.exp(drift + diffusion * rng.standard_normal())
            price = round(prices[ticker], 4)
            volume = 1 + int(rng.poisson(self.mean_volume_shares))
            event_time = self.clocks.get(ticker, self.clock)()
            yield TickMessage(
                schema_version=SCHEMA_VERSION,
                tick_id=make_tick_id(
                    self.name, ticker, event_time, price, volume, f"seed={self.seed}#{seq}"
                ),
                ticker=ticker,
                event_time=event_time,
                price=price,
                volume=Decimal(volume),
                source=self.name,
                seq=seq,
                asset_class=kinds[ticker],
                currency=currencies[ticker],
            )
            seq += 1
            if interval_s:
                next_due += interval_s
                delay = next_due - self.monotonic()
                if delay > 0:
                    self.sleep(delay)
