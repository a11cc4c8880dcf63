"""Quarantine reason codes: the closed set of values of ``silver/quarantine.reason``.

Every record Silver rejects lands in ``silver/quarantine`` with one of these and a
human-readable detail; :data:`REASON_MEANINGS` says what each means (docs/data-dictionary.md
lists them too, and a test keeps them equal).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why Silver rejected a Bronze record. The value is what the quarantine table stores."""

    NULL_VALUE = "null_value"
    OVERSIZE = "oversize"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    TICKER_MALFORMED = "ticker_malformed"
    TICKER_UNKNOWN = "ticker_unknown"
    TICK_ID_MALFORMED = "tick_id_malformed"
    PRICE_NOT_FINITE = "price_not_finite"
    PRICE_NOT_POSITIVE = "price_not_positive"
    VOLUME_NEGATIVE = "volume_negative"
    EVENT_TIME_INVALID = "event_time_invalid"
    EVENT_TIME_FUTURE = "event_time_future"
    INVALID_FIELD = "invalid_field"
    DUPLICATE_TICK_ID = "duplicate_tick_id"
    LATE = "late"


REASON_MEANINGS: dict[Reason, str] = {
    Reason.NULL_VALUE: "the Kafka record has no value (tombstone)",
    Reason.OVERSIZE: "the value is longer than max_message_bytes",
    Reason.NOT_UTF8: "the value is not valid UTF-8",
    Reason.NOT_JSON: "the value is not JSON",
    Reason.NOT_OBJECT: "the JSON value is not an object (wrong top-level type)",
    Reason.UNKNOWN_SCHEMA_VERSION: "schema_version is missing from the supported set {1}",
    Reason.MISSING_FIELD: "a required field is missing",
    Reason.WRONG_TYPE: "a field has the wrong JSON type (e.g. price as a string)",
    Reason.TICKER_MALFORMED: "ticker does not match config.settings.TICKER_PATTERN "
                             "(^?[A-Z0-9][A-Z0-9.=-]{0,11}: AAPL, BRK.B, ^GSPC, EURUSD=X)",
    Reason.TICKER_UNKNOWN: "ticker is well-formed but not in the ticker allow-list "
                           "(TICKLAKE_TICKER_ALLOWLIST)",
    Reason.TICK_ID_MALFORMED: "tick_id is not 32 lower-case hex digits",
    Reason.PRICE_NOT_FINITE: "price is NaN or infinite",
    Reason.PRICE_NOT_POSITIVE: "price <= 0",
    Reason.VOLUME_NEGATIVE: "volume < 0",
    Reason.EVENT_TIME_INVALID: "event_time is not an ISO-8601 time with a time zone",
    Reason.EVENT_TIME_FUTURE: "event_time is later than now + max_future_skew_s",
    Reason.INVALID_FIELD: "another field constraint failed (source, seq, a volume or seq above "
                          "2**63 - 1)",
    Reason.DUPLICATE_TICK_ID: "a tick with the same tick_id is already in Silver or earlier in "
                              "the batch",
    Reason.LATE: "event_time is behind its ticker's watermark (latest Silver event time - "
                 "allowed_lateness_s)",
}
"""Every reason code with its meaning."""
