"""The tick message: the one contract between producers and the pipeline.

A tick is published to Kafka as UTF-8 JSON, key = ticker::

    {"schema_version": 1, "tick_id": "5f0c...", "ticker": "AAPL",
     "event_time": "2013-03-01T14:30:00Z", "price": 130.31, "volume": 2404025,
     "source": "replay", "seq": 73512}

``event_time`` is ISO-8601 in UTC (a ``Z`` or ``+00:00`` suffix; other offsets are converted
to UTC). ``price`` is in the instrument's quote currency per share, ``volume`` in shares.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from config.settings import TICKER_PATTERN

SCHEMA_VERSION: Literal[1] = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})
TICK_ID_PATTERN = r"^[0-9a-f]{32}$"
"""A tick id: 32 lower-case hex digits (see :func:`make_tick_id`)."""
BACKFILL_SOURCE = "backfill"
"""The ``source`` of ticks ``ticklake backfill`` publishes: history sent on purpose, which
Silver does not hold against its ticker's watermark (it is never quarantined as ``late``;
duplicates still are)."""
INT64_MAX = 2**63 - 1
"""Largest ``volume`` / ``seq``: Silver stores them as 64-bit signed integers."""


class TickMessage(BaseModel):
    """One trade tick, as published on the topic (schema version 1).

    Attributes:
        schema_version: message schema version; only 1 exists.
        tick_id: stable id, 32 lower-case hex characters (see :func:`make_tick_id`).
        ticker: symbol matching ``config.settings.TICKER_PATTERN``.
        event_time: when the trade happened, timezone-aware, normalised to UTC.
        price: trade price, finite and > 0.
        volume: shares traded, 0 <= volume <= 2**63 - 1 (Silver stores a 64-bit integer).
        source: which source produced the tick (``replay``, ``synthetic``, ...).
        seq: per-ticker sequence number, 0 <= seq <= 2**63 - 1; breaks ties between ticks with
            equal event time.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    schema_version: Literal[1]
    tick_id: str = Field(pattern=TICK_ID_PATTERN)
    ticker: str = Field(pattern=TICKER_PATTERN.pattern)
    event_time: datetime
    price: float = Field(gt=0, allow_inf_nan=False)
    volume: StrictInt = Field(ge=0, le=INT64_MAX)
    source: str = Field(min_length=1, max_length=64)
    seq: StrictInt = Field(ge=0, le=INT64_MAX)

    @field_validator("event_time", mode="before")
    @classmethod
    def _parse_event_time(cls, value: object) -> datetime:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value)
        else:
            raise ValueError("event_time must be an ISO-8601 string")
        if parsed.tzinfo is None:
            raise ValueError("event_time has no time zone; send UTC with a 'Z' suffix")
        return parsed.astimezone(UTC)

    def to_json_bytes(self) -> bytes:
        """Serialise as compact UTF-8 JSON with ``event_time`` in ``...Z`` form."""
        data = self.model_dump()
        data["event_time"] = format_event_time(self.event_time)
        return _dumps(data)


MESSAGE_FIELDS: tuple[str, ...] = tuple(TickMessage.model_fields)
"""The message's fields, in order; Silver stores each as a column of the same name."""


def format_event_time(ts: datetime) -> str:
    """ISO-8601 UTC with microseconds only when non-zero, e.g. ``2013-03-01T14:30:00Z``.

    Raises:
        ValueError: ``ts`` is naive.
    """
    if ts.tzinfo is None:
        raise ValueError("naive datetime; ticklake keeps every time UTC and timezone-aware")
    text = ts.astimezone(UTC).isoformat(timespec="microseconds" if ts.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def make_tick_id(
    source: str, ticker: str, event_time: datetime, price: float, volume: int, position: str
) -> str:
    """A stable tick id: the first 32 hex digits of SHA-256 over content and source position.

    The same input replayed gives the same id, so Silver can deduplicate replays.

    Args:
        source: source name (``replay``, ``synthetic``).
        ticker: symbol.
        event_time: UTC event time.
        price: trade price (``repr`` of the float is hashed, so it is exact).
        volume: shares.
        position: where the tick comes from inside its source, e.g. ``"2013-03-01#2"`` for the
            third tick of that day's bar, or ``"seed=42#17"`` for a synthetic tick.
    """
    text = "|".join(
        [source, ticker, format_event_time(event_time), repr(float(price)), str(volume), position]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _dumps(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
