"""Validation of raw tick messages into typed ticks or a quarantine reason.

Reason codes form a closed set (:class:`config.reasons.Reason`); every rejected record lands
in ``silver/quarantine`` with one of them, a human-readable detail and its raw bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute
import pyarrow.json as _json
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from config.instruments import ASSET_CLASSES, CURRENCY_PATTERN, asset_class, currency
from config.reasons import Reason
from config.settings import TICKER_PATTERN
from config.tables import VOLUME_DECIMAL
from producer.messages import (
    INT64_MAX,
    TICK_ID_PATTERN,
    NotAnObjectError,
    TickMessage,
    parse_message,
)

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
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Reason.NOT_UTF8, str(exc)[:200]
    try:  # volume read exactly
        tick = parse_message(text)
    except ValidationError as exc:  # a ValueError too: caught first
        errors = exc.errors(include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return None, _reason_of(errors), detail[:500]
    except NotAnObjectError as exc:
        return None, Reason.NOT_OBJECT, str(exc)
    except ValueError as exc:  # json.JSONDecodeError
        return None, Reason.NOT_JSON, str(exc)[:200]
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


# --- whole batches -------------------------------------------------------------------------

pc: Any = _compute
pa_json: Any = _json
"""pyarrow's compute functions and JSON reader, untyped here: pyarrow-stubs' overloads refuse
what pyarrow accepts (Python scalars as operands, a ``BufferReader`` as JSON input)."""
ArrowArray = Any
"""A pyarrow array."""
ArrowTable = Any
"""A pyarrow table."""

CHUNK_ROWS = 8192
"""Rows parsed together by :func:`validate_values`; a chunk pyarrow cannot parse as a whole
(one malformed message in it) is validated row by row."""

_PARSE_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in [
    ("schema_version", pa.int64()), ("tick_id", pa.string()), ("ticker", pa.string()),
    ("event_time", pa.string()), ("price", pa.float64()), ("volume", VOLUME_DECIMAL),
    ("source", pa.string()), ("seq", pa.int64()), ("asset_class", pa.string()),
    ("currency", pa.string()),
]])
_PARSE_OPTIONS = pa_json.ParseOptions(explicit_schema=_PARSE_SCHEMA,
                                      unexpected_field_behavior="ignore")
_CANONICAL_TIME = r"^[1-9]\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?(Z|\+00:00)$"
"""The event-time forms :func:`producer.messages.format_event_time` writes (and ``+00:00``);
other ISO-8601 forms are valid too, and take the row-by-row path."""

_SLOW_TEXT = r'\\u|"volume"\s*:\s*"'
"""Rows the column-wise path leaves to the row-by-row one: a quoted volume (pyarrow reads
``"volume": "12"`` into a decimal column; the message refuses a string), or any ``\\u`` escape
(it could spell a key, hiding it from the text checks)."""
_FRACTION_VOLUME = r'"volume"\s*:\s*-?[0-9]+[.eE]'
"""A volume written with a fraction or an exponent: refused in a v1 message (a JSON integer)."""

VALIDATED_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in [
    ("schema_version", pa.int32()), ("tick_id", pa.string()), ("ticker", pa.string()),
    ("event_time", pa.timestamp("us", tz="UTC")), ("price", pa.float64()),
    ("volume", VOLUME_DECIMAL), ("source", pa.string()), ("seq", pa.int64()),
    ("asset_class", pa.string()), ("currency", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()),
]])
"""What :func:`validate_values` returns: the message's fields (null unless valid; a v1
message's ``asset_class`` and ``currency`` upcast from its ticker), the reason (null for a
valid tick) and its detail."""


def validate_values(
    values: ArrowArray, now: datetime, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None = None,
) -> ArrowTable:
    """Validate a column of raw Kafka values at once; same verdicts as :func:`validate_value`.

    Each chunk of :data:`CHUNK_ROWS` values is parsed by pyarrow's JSON reader into typed
    columns (it refuses any type other than the field's, duplicate keys and trailing data, so
    a chunk it parses holds JSON objects whose fields have the message's JSON types), then the
    message's constraints are checked column-wise. A row is valid on this path only if every
    check passes and its ``event_time`` has the canonical form; every other row (and every row
    of a chunk pyarrow cannot parse) goes through :func:`validate_value`, which decides it and
    gives the reason. So the fast path only ever accepts; it never rejects.

    Args:
        values: binary (or large binary) array of message values; nulls are tombstones.
        now: current UTC time (the micro-batch time).
        max_message_bytes, max_future_skew_s, allowed_tickers: see :func:`validate_value`.

    Returns:
        A table of :data:`VALIDATED_SCHEMA`, one row per value, in order.
    """
    chunks = [_validate_chunk(values.slice(start, CHUNK_ROWS), now, max_message_bytes,
                              max_future_skew_s, allowed_tickers)
              for start in range(0, len(values), CHUNK_ROWS)]
    if not chunks:
        return VALIDATED_SCHEMA.empty_table()
    return pa.concat_tables(chunks)


def _validate_chunk(
    values: ArrowArray, now: datetime, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> ArrowTable:
    n = len(values)
    fast = pa.repeat(False, n)
    parsed: ArrowTable | None = None
    try:
        text = values.cast(pa.string())  # raises on invalid UTF-8: the chunk goes row by row
        shaped = pc.and_kleene(
            pc.and_kleene(pc.less_equal(pc.binary_length(values), max_message_bytes),
                          pc.starts_with(text, "{")),
            pc.and_kleene(pc.ends_with(text, "}"),
                          pc.invert(pc.match_substring_regex(text, r"[\r\n]"))))
        # a quoted volume, or a \u escape that could spell a key pyarrow decodes
        # ("vol\u0075me", hiding it from the text checks): such rows go row by row
        shaped = pc.and_kleene(shaped, pc.invert(pc.match_substring_regex(text, _SLOW_TEXT)))
        shaped = pc.fill_null(shaped, False)
        candidates = pc.filter(text, shaped)
        if len(candidates):
            rows = pa_json.read_json(pa.BufferReader(_joined_lines(candidates)),
                                     parse_options=_PARSE_OPTIONS)
            if rows.num_rows == len(candidates):
                parsed = _scatter(rows, shaped)
                has_v1 = pc.any(pc.equal(parsed.column("schema_version"), 1)).as_py()
                fraction = (pc.match_substring_regex(text, _FRACTION_VOLUME) if has_v1
                            else pa.repeat(False, n))  # only v1 refuses a fraction
                fast, stamps = _fast_valid(parsed, fraction, now, max_future_skew_s,
                                           allowed_tickers)
                parsed = _upcast(parsed.set_column(parsed.schema.get_field_index("event_time"),
                                                   "event_time", stamps))
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        parsed, fast = None, pa.repeat(False, n)
    return _assemble(values, parsed, fast, now, max_message_bytes, max_future_skew_s,
                     allowed_tickers)


def _joined_lines(text: ArrowArray) -> Any:
    """The strings of ``text`` (no nulls) as one buffer, each followed by a newline."""
    lines = pc.binary_join_element_wise(text, "\n", "")
    ends = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, lines.buffers()[1]],
                                 offset=lines.offset)
    first, last = ends[0].as_py(), ends[-1].as_py()
    return lines.buffers()[2].slice(first, last - first)


def _scatter(rows: ArrowTable, mask: ArrowArray) -> ArrowTable:
    """``rows`` (one per true entry of ``mask``) spread to ``len(mask)`` rows, nulls between."""
    positions = pc.if_else(mask, pc.subtract(pc.cumulative_sum(pc.cast(mask, pa.int64())), 1),
                           pa.scalar(None, pa.int64()))
    return rows.take(positions)


def _upcast(parsed: ArrowTable) -> ArrowTable:
    """``parsed`` with a missing ``asset_class`` / ``currency`` (a v1 message) derived from
    the row's ticker, as :class:`~producer.messages.TickMessage` upcasts it."""
    tickers = parsed.column("ticker")
    distinct = pc.unique(tickers).drop_null()
    names = distinct.to_pylist()
    at = pc.index_in(tickers, value_set=distinct)
    for column, derive in (("asset_class", asset_class), ("currency", currency)):
        derived = pa.array([derive(name) for name in names], pa.string()).take(at)
        parsed = parsed.set_column(parsed.schema.get_field_index(column), column,
                                   pc.coalesce(parsed.column(column), derived))
    return parsed


def _fast_valid(
    parsed: ArrowTable, fraction: ArrowArray, now: datetime, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> tuple[ArrowArray, ArrowArray]:
    """True where a parsed row certainly passes every check of :func:`validate_value`; and
    the rows' event times (``timestamp[us, UTC]``, null where not checked). ``fraction`` is
    true where the row's text writes ``volume`` with a fraction or exponent (refused in v1)."""
    col = parsed.column
    time_text = col("event_time")
    version = col("schema_version")
    v1 = pc.equal(version, 1)
    checks = [
        pc.or_kleene(v1, pc.equal(version, 2)),
        pc.match_substring_regex(col("tick_id"), TICK_ID_PATTERN),
        pc.match_substring_regex(col("ticker"), TICKER_PATTERN.pattern),
        pc.match_substring_regex(time_text, _CANONICAL_TIME),
        pc.greater(col("price"), 0.0), pc.is_finite(col("price")),
        pc.greater_equal(col("volume"), pa.scalar(0, pa.int64()).cast(VOLUME_DECIMAL)),
        pc.less_equal(col("volume"), pa.scalar(INT64_MAX, pa.int64()).cast(VOLUME_DECIMAL)),
        pc.greater_equal(col("seq"), 0),
        pc.greater_equal(pc.utf8_length(col("source")), 1),
        pc.less_equal(pc.utf8_length(col("source")), 64),
        # v2 names its asset class and currency; a v1 message may (they are checked alike)
        pc.if_else(pc.is_null(col("asset_class")), v1,
                   pc.is_in(col("asset_class"), pa.array(ASSET_CLASSES, pa.string()))),
        pc.if_else(pc.is_null(col("currency")), v1,
                   pc.match_substring_regex(col("currency"), CURRENCY_PATTERN)),
        pc.invert(pc.and_kleene(v1, fraction)),
    ]
    if allowed_tickers is not None:
        checks.append(pc.is_in(col("ticker"), pa.array(sorted(allowed_tickers), pa.string())))
    ok = checks[0]
    for check in checks[1:]:
        ok = pc.and_kleene(ok, check)
    ok = pc.fill_null(ok, False)
    stamps = _event_times(pc.if_else(ok, time_text, pa.scalar(None, pa.string())))
    latest = now + timedelta(seconds=max_future_skew_s)
    in_time = pc.less_equal(stamps, pa.scalar(latest, pa.timestamp("us", tz="UTC")))
    return pc.fill_null(pc.and_kleene(ok, in_time), False), stamps


def _event_times(text: ArrowArray) -> ArrowArray:
    """Canonical ISO-8601 UTC strings -> ``timestamp[us, UTC]``; null where the text is not a
    real time (2013-02-30, a leap second 23:59:60): the parsed time must print as its text."""
    bare = pc.replace_substring_regex(text, r"(Z|\+00:00)$", "")
    fmt = "%Y-%m-%dT%H:%M:%S"
    whole = pc.utf8_slice_codeunits(bare, 0, 19)
    seconds = pc.strptime(whole, format=fmt, unit="us", error_is_null=True)
    printed = pc.strftime(pc.cast(seconds, pa.timestamp("s")), format=fmt)  # %S: no fraction
    seconds = pc.if_else(pc.equal(printed, whole), seconds,
                         pa.scalar(None, seconds.type))
    micros = pc.cast(pc.fill_null(_micros(bare), 0), pa.duration("us"))
    return pc.cast(pc.add(seconds, micros), pa.timestamp("us", tz="UTC"))


def _micros(bare: ArrowArray) -> ArrowArray:
    """The six fraction digits after ``YYYY-MM-DDTHH:MM:SS.`` as an integer (null if none)."""
    fraction = pc.utf8_slice_codeunits(bare, 20, 26)
    digits = pc.if_else(pc.equal(pc.utf8_length(fraction), 6), fraction,
                        pa.scalar(None, pa.string()))
    return pc.cast(digits, pa.int64())


def _assemble(
    values: ArrowArray, parsed: ArrowTable | None, fast: ArrowArray, now: datetime,
    max_message_bytes: int, max_future_skew_s: float, allowed_tickers: frozenset[str] | None,
) -> ArrowTable:
    """Fast rows from ``parsed`` (``event_time`` already a timestamp); every other row from
    :func:`validate_value`."""
    n = len(values)
    slow = pc.indices_nonzero(pc.invert(fast)).to_pylist()
    columns: dict[str, ArrowArray] = {}
    if parsed is not None:
        for field in VALIDATED_SCHEMA:
            if field.name in ("reason", "detail"):
                continue
            # keep the fast rows first, then cast: another row may hold a value the target
            # type cannot (schema_version 2**40 is an int64 but no int32)
            kept = pc.if_else(fast, parsed.column(field.name),
                              pa.nulls(n, parsed.schema.field(field.name).type))
            columns[field.name] = pc.cast(kept, field.type)
    else:
        columns = {f.name: pa.nulls(n, f.type) for f in VALIDATED_SCHEMA
                   if f.name not in ("reason", "detail")}
    reasons: list[str | None] = [None] * n
    details: list[str | None] = [None] * n
    if slow:
        raw = values.take(pa.array(slow, pa.int64())).to_pylist()
        found: dict[str, list[Any]] = {name: [None] * n for name in columns}
        for index, value in zip(slow, raw, strict=True):
            tick, reason, detail = validate_value(value, now, max_message_bytes,
                                                  max_future_skew_s, allowed_tickers)
            reasons[index], details[index] = reason, detail
            if tick is not None:
                for name in found:
                    found[name][index] = getattr(tick, name)
        for name, listed in found.items():
            typed = pa.array(listed, VALIDATED_SCHEMA.field(name).type)
            columns[name] = pc.if_else(fast, columns[name], typed)
    return pa.table({**columns, "reason": pa.array(reasons, pa.string()),
                     "detail": pa.array(details, pa.string())}, schema=VALIDATED_SCHEMA)
