"""Build a tick source by name, as ``ticklake produce --source NAME`` and ``ticklake up`` do."""

from __future__ import annotations

from pathlib import Path

from config.errors import ConfigError
from config.settings import Settings
from producer.sources import SOURCE_NAMES, TickSource

SYNTHETIC_DAYS_BACK = 5
"""Synthetic event times start at the session open this many trading days ago, in each
ticker's own calendar (NYSE for AAPL, 24/7 for BTC-USD, 24/5 for EURUSD=X)."""
DEFAULT_SYNTHETIC_RATE = 50.0
"""Ticks per second of a live synthetic source when no rate is given (``ticklake up``, and
the synthetic fallback of the yfinance source)."""


def build_source(
    settings: Settings, source: str, csv: list[Path], tickers: list[str] | None,
    rate: float | None, count: int | None,
) -> TickSource:
    """The tick source named ``source``.

    Args:
        settings: default tickers and the seed.
        source: one of :data:`producer.sources.SOURCE_NAMES`.
        csv: CSV files to replay (replay only); bokeh-sampledata when empty.
        tickers: symbols (default ``settings.tickers``, or the CSVs' own for a CSV replay).
        rate: synthetic ticks per second (None = as fast as possible; for the synthetic
            fallback of yfinance, :data:`DEFAULT_SYNTHETIC_RATE`).
            yfinance polls Yahoo (interval, poll period, deadline, fallback from ``settings``)
            before returning, so an unreachable Yahoo fails here, before a broker is needed.
        count: synthetic: stop after this many ticks (None = unbounded).

    Raises:
        ConfigError: an unknown source name or a bad rate/count (the message names the value
            and the allowed range).
        SourceError: the replay input cannot be read; for yfinance
            (:class:`~producer.sources.yahoo.YahooUnavailable`), Yahoo gave no bars at the
            first poll and ``settings.yahoo_fallback`` is ``none``.
    """
    if source == "replay":
        from producer.sources.replay import ReplaySource

        return ReplaySource(tickers or ([] if csv else list(settings.tickers)), csv)
    if source == "synthetic":
        from producer.sources.synthetic import SyntheticSource, market_clocks

        symbols = tickers or list(settings.tickers)
        return SyntheticSource(symbols, seed=settings.seed, rate_per_s=rate, count=count,
                               clocks=market_clocks(symbols, SYNTHETIC_DAYS_BACK, step_s=1.0))
    if source == "yfinance":
        from producer.sources.yahoo import YahooSource

        symbols = tickers or list(settings.tickers)
        backup = settings.yahoo_fallback
        # stands in for a live feed: a synthetic fallback is paced, not as fast as possible
        paced = DEFAULT_SYNTHETIC_RATE if rate is None and backup == "synthetic" else rate
        return YahooSource(
            symbols, settings.yahoo_interval, settings.yahoo_poll_s, settings.yahoo_deadline_s,
            fallback=None if backup == "none" else
            lambda: build_source(settings, backup, csv, symbols, paced, count),
        ).connect()
    raise ConfigError(f"source {source!r} is not one of {', '.join(SOURCE_NAMES)}")
