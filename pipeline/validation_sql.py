"""Validation of raw tick messages in Spark SQL: the path a well-formed message takes.

:func:`message_columns` and :func:`accepted` are Spark SQL expressions (no Python worker)
that decide the common case: a valid message in the layout the message model writes
(:meth:`producer.messages.TickMessage.to_json_bytes`, what ticklake's producers publish). Like
the column-wise path of :func:`pipeline.validation.validate_values` they **only ever accept**:
a message they do not accept is not rejected here but decided by
:func:`~pipeline.validation.validate_value` (the message model,
:class:`producer.messages.TickMessage`), which gives the quarantine reason and its detail. So
the reasons, the details and the set of valid messages are the model's;
``tests/unit/test_validation_sql.py`` checks the two agree on generated good and bad messages.

A message is accepted here only when all of these hold:

* its bytes are valid UTF-8, at most ``max_message_bytes``, and match :data:`LAYOUT`: one JSON
  object holding exactly the model's fields (:data:`producer.messages.MESSAGE_FIELDS`) in the
  model's order, spaces allowed around ``:`` and ``,``, strings without escapes or control
  characters, numbers in JSON's form. Each field then has its JSON type, and splitting the
  text at its quotes puts each value at a known place (:func:`message_columns`);
* every field passes its constraint: ``schema_version`` 1 or 2; ``tick_id``, ``ticker``,
  ``currency`` match their patterns; ``event_time`` has the canonical form
  :func:`producer.messages.format_event_time` writes (or ``+00:00``) and is a real UTC time;
  ``price`` finite and > 0; ``volume`` within [0, 2**63 - 1] with at most 8 decimal places
  and no exponent (v1: a JSON integer); ``seq`` within [0, 2**63 - 1]; ``source`` 1 to 64
  characters; ``asset_class`` one of :data:`config.instruments.ASSET_CLASSES`;
* its ticker is in the allow-list, if one is set, and its event time is at most
  ``max_future_skew_s`` after ``now``.

Everything else goes to the model: other key orders, unknown fields, escapes, a v1 message
without ``asset_class`` / ``currency`` (the model derives them from the ticker).
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from config.instruments import ASSET_CLASSES, CURRENCY_PATTERN
from config.settings import TICKER_PATTERN
from producer.messages import INT64_MAX, MESSAGE_FIELDS, TICK_ID_PATTERN, VOLUME_SCALE


def _body(pattern: str) -> str:
    """An anchored pattern ``^...$`` of the model without its anchors, to embed between
    quotes (where no line terminator can follow it, so Java's ``$`` quirks do not arise)."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"expected an anchored pattern ^...$, got {pattern!r}")
    return pattern[1:-1]


_SPACES = " *+"
_TIME = (r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?+"
         r"(?:Z|\+00:00)")
"""The event-time forms :func:`producer.messages.format_event_time` writes (and ``+00:00``)."""
_VALUES = {
    "schema_version": "[12]",
    "tick_id": f'"{_body(TICK_ID_PATTERN)}"',
    "ticker": f'"{_body(TICKER_PATTERN.pattern)}"',
    "event_time": f'"{_TIME}"',
    # a JSON number of modest length: Java's Double.parseDouble and Python's float both round
    # it correctly (longer ones go to the model)
    "price": r"(?:0|[1-9][0-9]{0,39})(?:\.[0-9]{1,40})?+(?:[eE][+-]?+[0-9]{1,3})?+",
    # no exponent, at most VOLUME_SCALE decimal places (more, even trailing zeros the model
    # drops, go to the model), a sign only for -0 (the model refuses other negatives)
    "volume": rf"-?+(?:0|[1-9][0-9]{{0,18}})(?:\.[0-9]{{1,{VOLUME_SCALE}}})?+",
    "source": r'"[^"\\\x00-\x1f]{1,64}+"',
    "seq": "(?:0|[1-9][0-9]{0,18})",
    "asset_class": f'"(?:{"|".join(ASSET_CLASSES)})"',
    "currency": f'"{_body(CURRENCY_PATTERN)}"',
}
if tuple(_VALUES) != MESSAGE_FIELDS:  # the layout follows the model's field order
    raise RuntimeError(f"message fields {MESSAGE_FIELDS} changed: update {__name__}")

LAYOUT = (r"^\{" + _SPACES
          + f"{_SPACES},{_SPACES}".join(f'"{name}"{_SPACES}:{_SPACES}{value}'
                                        for name, value in _VALUES.items())
          + _SPACES + r"\}\z")
"""The layout :meth:`producer.messages.TickMessage.to_json_bytes` writes: the model's fields
in its order, spaces allowed around the separators (a Java regular expression)."""


def _value_parts() -> dict[str, int]:
    """Where each field's value lies among the pieces of a :data:`LAYOUT` text split at its
    quotes: a string's value is a piece of its own; a number sits in the piece after its key
    (``:61234.5,``)."""
    places, piece = {}, 0
    for name, value in _VALUES.items():
        if value.startswith('"'):  # "name" : "value" ,
            places[name], piece = piece + 3, piece + 4
        else:  # "name" :number,
            places[name], piece = piece + 2, piece + 2
    return places


_PARTS = _value_parts()


def _epoch_micros(year: Column, month: Column, day: Column, hour: Column, minute: Column,
                  second: Column, fraction: Column) -> Column:
    """Microseconds since 1970-01-01T00:00:00Z of a UTC date and time given as integers (year
    1000 to 9999); null unless it names a real time: month 1-12, a day of that month
    (February 29 in leap years only), hour < 24, minute and second < 60 (no leap second), as
    :meth:`datetime.datetime.fromisoformat` requires. Integer arithmetic only: days from the
    civil date by H. Hinnant's ``days_from_civil``
    (https://howardhinnant.github.io/date_algorithms.html#days_from_civil)."""
    def div(a: Column, b: int) -> Column:  # floor division of a non-negative a
        return F.floor(a / b)

    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = F.when(month == 2, F.when(leap, 29).otherwise(28)).otherwise(
        30 + (month + div(month, 8)) % 2)
    real = (month.between(1, 12) & day.between(1, month_days) & (hour < 24) & (minute < 60)
            & (second < 60))
    shifted = year - F.when(month <= 2, 1).otherwise(0)  # years starting in March
    era, year_of_era = div(shifted, 400), shifted % 400
    day_of_year = div(153 * (month + F.when(month > 2, -3).otherwise(9)) + 2, 5) + day - 1
    day_of_era = year_of_era * 365 + div(year_of_era, 4) - div(year_of_era, 100) + day_of_year
    days = era * 146097 + day_of_era - 719468
    return F.when(real, (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000
                  + fraction)


SQL_COLUMN = "_sql"
"""The struct column :func:`with_sql_verdicts` adds."""


def with_sql_verdicts(
    frame: DataFrame, max_message_bytes: int, now: Column, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> DataFrame:
    """``frame`` (with a binary ``value``: raw Kafka values, null for a tombstone) plus
    :data:`SQL_COLUMN`, a struct of the message's fields read as the model reads them and
    ``_accepted``: whether the message has the :data:`LAYOUT` and passes every check (never
    null; if true, the model accepts the message too, with those values).

    The struct's fields: ``schema_version`` (int), ``tick_id``, ``ticker``, ``event_time``
    (timestamp, UTC), ``price`` (double), ``volume_decimal`` (decimal(38, 8)), ``source``,
    ``seq`` (long), ``asset_class``, ``currency``, ``_accepted``; the message fields are
    meaningful only where ``_accepted`` is true.

    The work is spread over a few projections, each reading the one before's columns several
    times, so Spark keeps them apart and computes each intermediate once per row (inside one
    projection it would not share those under a CASE WHEN).

    Args:
        frame: any rows with a binary ``value`` column.
        max_message_bytes, max_future_skew_s, allowed_tickers: see
            :func:`pipeline.validation.validate_value`.
        now: the time to validate against (timestamp).
    """
    value = F.col("value")
    staged = frame.select("*", value.cast("string").alias("_v_text"))
    text = F.col("_v_text")
    staged = staged.select("*", (value.isNotNull() & (F.length(value) <= max_message_bytes)
                                 & F.is_valid_utf8(value) & text.rlike(LAYOUT))
                           .alias("_v_laid_out"))
    # only a text in the layout is split: CASE WHEN evaluates its branch lazily
    staged = staged.select("*", F.when(F.col("_v_laid_out"), F.split(text, '"'))
                           .alias("_v_parts"))
    parts = F.col("_v_parts")
    staged = staged.select("*", *[
        (F.get(parts, _PARTS[name]) if _VALUES[name].startswith('"')
         else F.translate(F.get(parts, _PARTS[name]), ": ,}", "")).alias(f"_v_{name}")
        for name in _VALUES])
    piece = {name: F.col(f"_v_{name}") for name in _VALUES}
    when = piece["event_time"]
    digits = {"year": (1, 4), "month": (6, 2), "day": (9, 2), "hour": (12, 2),
              "minute": (15, 2), "second": (18, 2)}
    staged = staged.select(
        "*", *[when.substr(start, length).try_cast("long").alias(f"_v_{name}")
               for name, (start, length) in digits.items()],
        F.when(when.substr(20, 1) == ".", when.substr(21, 6).try_cast("long")).otherwise(0)
        .alias("_v_fraction"),
        piece["volume"].try_cast(f"decimal(38,{VOLUME_SCALE})").alias("_v_volume_decimal"),
        piece["price"].try_cast("double").alias("_v_price_double"),
        piece["seq"].try_cast("long").alias("_v_seq_long"))
    micros = _epoch_micros(*[F.col(f"_v_{name}") for name in [*digits, "fraction"]])
    staged = staged.select("*", micros.alias("_v_micros"))
    volume, price = F.col("_v_volume_decimal"), F.col("_v_price_double")
    skew_us = timedelta(seconds=max_future_skew_s) // timedelta(microseconds=1)
    checks = [
        F.col("_v_laid_out"), F.col("_v_micros").isNotNull(),
        F.col("_v_micros") <= F.unix_micros(now) + F.lit(skew_us),
        price > 0, price < float("inf"),
        volume >= 0, volume <= INT64_MAX,
        (piece["schema_version"] == "2") | ~piece["volume"].contains("."),  # v1: an integer
        F.col("_v_seq_long").isNotNull(),
        F.char_length(piece["source"]) <= 64,  # code points, as the model counts
    ]
    if allowed_tickers is not None:
        checks.append(piece["ticker"].isin(*sorted(allowed_tickers)))
    ok = checks[0]
    for check in checks[1:]:
        ok = ok & check
    fields = {
        "schema_version": piece["schema_version"].try_cast("int"),
        **{name: piece[name] for name in ("tick_id", "ticker")},
        "event_time": F.timestamp_micros(F.col("_v_micros")),
        "price": price, "volume_decimal": volume, "source": piece["source"],
        "seq": F.col("_v_seq_long"),
        **{name: piece[name] for name in ("asset_class", "currency")},
        "_accepted": F.coalesce(ok, F.lit(False)),
    }
    helpers = [name for name in staged.columns if name.startswith("_v_")]
    return staged.select(
        "*", F.struct(*[column.alias(name) for name, column in fields.items()])
        .alias(SQL_COLUMN)).drop(*helpers)
