"""Tick sources behind one protocol: replay (real history), synthetic (GBM) and yfinance (live
intraday bars from Yahoo Finance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from config.calendar import EXCHANGE_TZ
from producer.messages import TickMessage

__all__ = ["EXCHANGE_TZ", "SOURCE_NAMES", "Clock", "TickSource"]

Clock = Callable[[], datetime]
"""An injectable clock returning a timezone-aware UTC ``datetime``."""


class TickSource(Protocol):
    """A source of ticks. ``ticks()`` yields messages in publication order."""

    name: str

    def ticks(self) -> Iterator[TickMessage]:
        """Yield ticks; a finite source ends, a live one runs until the caller stops."""
        ...

    def expected_count(self) -> int | None:
        """Number of ticks ``ticks()`` will yield, or None for an unbounded source."""
        ...


SOURCE_NAMES = ("replay", "synthetic", "yfinance")
