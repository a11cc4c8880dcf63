"""Validation of raw tick messages into typed ticks or a quarantine reason.

Reason codes form a closed set (:data:`REASONS`); every rejected record lands in
``silver/quarantine`` with one of them, a human-readable detail and its raw bytes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from producer.messages import TickMessage

REASONS: dict[str, str] = {
    "null_value": "the Kafka record has no value (tombstone)",
    "oversize": "the value is longer than max_message_bytes",
    "not_utf8": "the value is not valid UTF-8",
    "not_json": "the value is not JSON",
    "not_object": "the JSON value is not an object (wrong top-level type)",
    "unknown_schema_version": "schema_version is missing from the supported set {1}",
    "missing_field": "a required field is missing",
    "wrong_type": "a field has the wrong JSON type (e.g. price as a string)",
    "ticker_malformed": "ticker does not match ^[A-Z][A-Z0-9.-]{0,9}$",
    "ticker_unknown": "ticker is well-formed but not in the ticker allow-list (TICKLAKE_TICKER_ALLOWLIST)",
    "tick_id_malformed": "tick_id is not 32 lower-case hex digits",
    "price_not_finite": "price is NaN or infinite",
    "price_not_positive": "price <= 0",
    "volume_negative": "volume < 0",
    "event_time_invalid": "event_time is not an ISO-8601 time with a time zone",
    "event_time_future": "event_time is later than now + max_future_skew_s",
    "invalid_field": "another field constraint failed (source, seq)",
    "duplicate_tick_id": "a tick with the same tick_id is already in Silver or earlier in the batch",
    "late": "event_time is behind its ticker's watermark (latest Silver event time - allowed_lateness_s)",
}
"""Every quarantine reason code with its meaning."""

_BY_ERROR = {
    ("price", "finite_number"): "price_not_finite",
    ("price", "greater_than"): "price_not_positive",
    ("volume", "greater_than_equal"): "volume_negative",
    ("ticker", "string_pattern_mismatch"): "ticker_malformed",
    ("tick_id", "string_pattern_mismatch"): "tick_id_malformed",
    ("event_time", "value_error"): "event_time_invalid",
    ("event_time", "datetime_type"): "event_time_invalid",
}
_PRIORITY = ["unknown_schema_version", "missing_field", "wrong_type"]


def _reason_of(errors: list[dict[str, Any]]) -> str:
    reasons = []
    for err in errors:
        field = str(err["loc"][0]) if err["loc"] else ""
        kind = err["type"]
        if field == "schema_version":
            reasons.append("unknown_schema_version" if kind != "missing" else "missing_field")
        elif kind == "missing":
            reasons.append("missing_field")
        elif (field, kind) in _BY_ERROR:
            reasons.append(_BY_ERROR[(field, kind)])
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            reasons.append("wrong_type")
        else:
            reasons.append("invalid_field")
    return min(reasons, key=lambda r: _PRIORITY.index(r) if r in _PRIORITY else len(_PRIORITY))


def validate_value(
    value: bytes | None, now: datetime, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None = None,
) -> tuple[TickMessage | None, str | None, str | None]:
    """Validate one raw Kafka value.

    Args:
        value: the record's value bytes (None for a tombstone).
        now: current UTC time, for the future-event-time check.
        max_message_bytes: larger values are rejected as ``oversize``.
        max_future_skew_s: event times later than ``now`` plus this are ``event_time_future``.
        allowed_tickers: if given, a valid tick of another ticker is ``ticker_unknown``.

    Returns:
        ``(tick, None, None)`` for a valid tick, else ``(None, reason, detail)`` with
        ``reason`` from :data:`REASONS`.
    """
    if value is None:
        return None, "null_value", "record value is null"
    if len(value) > max_message_bytes:
        return None, "oversize", f"{len(value)} bytes > max_message_bytes={max_message_bytes}"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "not_utf8", str(exc)[:200]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, "not_json", str(exc)[:200]
    if not isinstance(data, dict):
        return None, "not_object", f"top-level JSON is {type(data).__name__}, expected object"
    try:
        tick = TickMessage.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return None, _reason_of(errors), detail[:500]
    if allowed_tickers is not None and tick.ticker not in allowed_tickers:
        return None, "ticker_unknown", (
            f"ticker {tick.ticker!r} is not in the allow-list ({len(allowed_tickers)} tickers)")
    if tick.event_time > now + timedelta(seconds=max_future_skew_s):
        return None, "event_time_future", (
            f"event_time {tick.event_time.isoformat()} is after now {now.isoformat()} + "
            f"{max_future_skew_s}s"
        )
    return tick, None, None
