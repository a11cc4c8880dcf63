"""Validation of raw tick messages into typed ticks or a quarantine reason.

Reason codes form a closed set (:class:`config.reasons.Reason`); every rejected record lands
in ``silver/quarantine`` with one of them, a human-readable detail and its raw bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from config.reasons import Reason
from producer.messages import TickMessage

_BY_ERROR = {
    ("price", "finite_number"): Reason.PRICE_NOT_FINITE,
    ("price", "greater_than"): Reason.PRICE_NOT_POSITIVE,
    ("volume", "greater_than_equal"): Reason.VOLUME_NEGATIVE,
    ("ticker", "string_pattern_mismatch"): Reason.TICKER_MALFORMED,
    ("tick_id", "string_pattern_mismatch"): Reason.TICK_ID_MALFORMED,
    ("event_time", "value_error"): Reason.EVENT_TIME_INVALID,
    ("event_time", "datetime_type"): Reason.EVENT_TIME_INVALID,
}
_PRIORITY = [Reason.UNKNOWN_SCHEMA_VERSION, Reason.MISSING_FIELD, Reason.WRONG_TYPE]


def _reason_of(errors: Sequence[ErrorDetails]) -> Reason:
    reasons = []
    for err in errors:
        field = str(err["loc"][0]) if err["loc"] else ""
        kind = err["type"]
        if field == "schema_version":
            reasons.append(Reason.UNKNOWN_SCHEMA_VERSION if kind != "missing" else Reason.MISSING_FIELD)
        elif kind == "missing":
            reasons.append(Reason.MISSING_FIELD)
        elif (field, kind) in _BY_ERROR:
            reasons.append(_BY_ERROR[(field, kind)])
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            reasons.append(Reason.WRONG_TYPE)
        else:
            reasons.append(Reason.INVALID_FIELD)
    return min(reasons, key=lambda r: _PRIORITY.index(r) if r in _PRIORITY else len(_PRIORITY))


def validate_value(
    value: bytes | None, now: datetime, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None = None,
) -> tuple[TickMessage | None, Reason | None, str | None]:
    """Validate one raw Kafka value.

    Args:
        value: the record's value bytes (None for a tombstone).
        now: current UTC time, for the future-event-time check.
        max_message_bytes: larger values are rejected as ``oversize``.
        max_future_skew_s: event times later than ``now`` plus this are ``event_time_future``.
        allowed_tickers: if given, a valid tick of another ticker is ``ticker_unknown``.

    Returns:
        ``(tick, None, None)`` for a valid tick, else ``(None, reason, detail)`` with
        ``reason`` a :class:`~config.reasons.Reason`.
    """
    if value is None:
        return None, Reason.NULL_VALUE, "record value is null"
    if len(value) > max_message_bytes:
        return None, Reason.OVERSIZE, f"{len(value)} bytes > max_message_bytes={max_message_bytes}"
    try:  # fast path: a valid message parses in one step; anything else takes the long way
        tick = TickMessage.model_validate_json(value)
    except ValidationError:
        pass
    else:
        return _admit(tick, now, max_future_skew_s, allowed_tickers)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Reason.NOT_UTF8, str(exc)[:200]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, Reason.NOT_JSON, str(exc)[:200]
    if not isinstance(data, dict):
        return None, Reason.NOT_OBJECT, f"top-level JSON is {type(data).__name__}, expected object"
    try:
        tick = TickMessage.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return None, _reason_of(errors), detail[:500]
    return _admit(tick, now, max_future_skew_s, allowed_tickers)


def _admit(
    tick: TickMessage, now: datetime, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> tuple[TickMessage | None, Reason | None, str | None]:
    """The checks that need more than the message: the allow-list and the clock."""
    if allowed_tickers is not None and tick.ticker not in allowed_tickers:
        return None, Reason.TICKER_UNKNOWN, (
            f"ticker {tick.ticker!r} is not in the allow-list ({len(allowed_tickers)} tickers)")
    if tick.event_time > now + timedelta(seconds=max_future_skew_s):
        return None, Reason.EVENT_TIME_FUTURE, (
            f"event_time {tick.event_time.isoformat()} is after now {now.isoformat()} + "
            f"{max_future_skew_s}s"
        )
    return tick, None, None
