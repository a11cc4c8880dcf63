"""The tick message: the one contract between producers and the pipeline.

A tick is published to Kafka as UTF-8 JSON, key = ticker. Version 2 (what ticklake publishes)::

    {"schema_version": 2, "tick_id": "5f0c...", "ticker": "BTC-USD",
     "event_time": "2024-03-01T14:30:00Z", "price": 61234.5, "volume": 2012.25,
     "source": "replay", "seq": 73512, "asset_class": "crypto", "currency": "USD"}

``event_time`` is ISO-8601 in UTC (a ``Z`` or ``+00:00`` suffix; other offsets are converted
to UTC). ``price`` is in ``currency`` per unit; ``volume`` is in units (shares, coins, contracts,
base currency) as a JSON number with at most :data:`VOLUME_SCALE` decimal places, read exactly
(never through a binary float). ``asset_class`` is one of
:data:`config.instruments.ASSET_CLASSES`; ``currency`` matches
:data:`config.instruments.CURRENCY_PATTERN`.

Version 1 (the first release) has no ``asset_class`` / ``currency`` and a whole-number
``volume`` (a JSON integer). It is still accepted and **upcast**: its asset class and currency
are derived from the ticker (:func:`config.instruments.asset_class`,
:func:`config.instruments.currency`); ``schema_version`` keeps saying 1.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from config.instruments import CURRENCY_PATTERN, AssetClass, asset_class, currency
from config.settings import TICKER_PATTERN
from config.tables import VOLUME_SCALE as TABLE_VOLUME_SCALE

SCHEMA_VERSION: Literal[2] = 2
"""The version ticklake's producers publish."""
SUPPORTED_SCHEMA_VERSIONS = frozenset({1, SCHEMA_VERSION})
VOLUME_SCALE = TABLE_VOLUME_SCALE
"""Decimal places a ``volume`` may have (a satoshi is 1e-8 BTC); Silver and Gold store exact
volumes as ``decimal(38, 8)`` (:data:`config.tables.VOLUME_DECIMAL`)."""
TICK_ID_PATTERN = r"^[0-9a-f]{32}$"
"""A tick id: 32 lower-case hex digits (see :func:`make_tick_id`)."""
BACKFILL_SOURCE = "backfill"
"""The ``source`` of ticks ``ticklake backfill`` publishes: history sent on purpose, which
Silver does not hold against its ticker's watermark (it is never quarantined as ``late``;
duplicates still are)."""
INT64_MAX = 2**63 - 1
"""Largest ``volume`` / ``seq``: Silver stores them as 64-bit signed integers."""


class TickMessage(BaseModel):
    """One trade tick, as published on the topic (schema version 2, or 1 upcast).

    Attributes:
        schema_version: message schema version, 1 or 2 (:data:`SUPPORTED_SCHEMA_VERSIONS`).
        tick_id: stable id, 32 lower-case hex characters (see :func:`make_tick_id`).
        ticker: symbol matching ``config.settings.TICKER_PATTERN``.
        event_time: when the trade happened, timezone-aware, normalised to UTC.
        price: trade price in ``currency`` per unit, finite and > 0.
        volume: units traded, exact: 0 <= volume <= 2**63 - 1 with at most
            :data:`VOLUME_SCALE` decimal places (v1: a whole number, sent as a JSON integer).
            Normalised: ``Decimal("2012.25")``, ``Decimal("100")``.
        source: which source produced the tick (``replay``, ``synthetic``, ...).
        seq: per-ticker sequence number, 0 <= seq <= 2**63 - 1; breaks ties between ticks with
            equal event time.
        asset_class: ``equity``, ``index``, ``fx``, ``crypto`` or ``future``; required in v2,
            derived from the ticker for v1.
        currency: the quote currency (:data:`config.instruments.CURRENCY_PATTERN`); required
            in v2, derived from the ticker for v1.

    Construct from Python with ``volume`` an ``int`` or a ``Decimal``; from raw bytes use
    :func:`parse_message` (it reads ``volume`` exactly).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    schema_version: Literal[1, 2]
    tick_id: str = Field(pattern=TICK_ID_PATTERN)
    ticker: str = Field(pattern=TICKER_PATTERN.pattern)
    event_time: datetime
    price: float = Field(gt=0, allow_inf_nan=False)
    volume: Decimal = Field(ge=0, le=INT64_MAX, decimal_places=VOLUME_SCALE)
    source: str = Field(min_length=1, max_length=64)
    seq: StrictInt = Field(ge=0, le=INT64_MAX)
    asset_class: AssetClass | None = Field(None, validate_default=True)
    currency: str | None = Field(None, pattern=CURRENCY_PATTERN, validate_default=True)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):  # true and 1.0 are no version
            raise PydanticCustomError("int_type", "schema_version must be a JSON integer")
        return value

    @field_validator("volume", mode="before")
    @classmethod
    def _read_volume(cls, value: object, info: ValidationInfo) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise PydanticCustomError("decimal_type", "volume must be a JSON number")
        if info.data.get("schema_version") == 1 and not isinstance(value, int):
            raise PydanticCustomError(
                "int_type", "a v1 message's volume is a JSON integer; send schema_version 2 "
                "for a decimal volume")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise PydanticCustomError("finite_number", "volume must be finite")
            value = Decimal(repr(value))
        return normalise_volume(Decimal(value))

    @field_validator("asset_class", "currency", mode="after")
    @classmethod
    def _upcast_or_require(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            return value
        if info.data.get("schema_version") == 2:
            raise PydanticCustomError("missing", "a v2 message carries {field}",
                                      {"field": info.field_name})
        ticker = info.data.get("ticker")
        if ticker is None:  # the ticker is invalid: its own error says so
            return None
        return asset_class(ticker) if info.field_name == "asset_class" else currency(ticker)

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
        """Serialise as compact UTF-8 JSON: ``event_time`` in ``...Z`` form, ``volume`` as the
        exact JSON number (``2012.25``, ``100``); a v1 message without the v2 fields."""
        data = self.model_dump()
        data["event_time"] = format_event_time(self.event_time)
        if self.schema_version == 1:
            del data["asset_class"], data["currency"]
        # volume is spliced in as its exact JSON number; the fields before and after it are
        # dumped in one call each (json.dumps per field cost more than the rest of the tick)
        keys = list(data)
        at = keys.index("volume")
        head = _dumps({key: data[key] for key in keys[:at]})[1:-1]
        tail = _dumps({key: data[key] for key in keys[at + 1:]})[1:-1]
        volume = b'"volume":' + format_volume(data["volume"]).encode()
        return b"{" + b",".join(part for part in (head, volume, tail) if part) + b"}"


MESSAGE_FIELDS: tuple[str, ...] = tuple(TickMessage.model_fields)
"""The message's fields, in order; Silver stores each as a column of the same name (the exact
``volume`` as ``volume_decimal``, and ``volume`` rounded to whole units)."""


def normalise_volume(volume: Decimal) -> Decimal:
    """``volume`` without trailing zeros or exponent: ``Decimal("2012.250")`` ->
    ``Decimal("2012.25")``, ``Decimal("1E+3")`` -> ``Decimal("1000")``, ``-0`` -> ``0``.

    Exact: digits are moved, never rounded (no decimal context is involved), so
    ``1E-100000000`` keeps its 100,000,000 decimal places for the scale check to refuse. A
    volume beyond any allowed one (over 2**63, or not finite) is returned as is, for the bound
    check to refuse: ``1e100000000`` must not become a hundred-million-digit integer.
    """
    if not volume.is_finite() or volume.copy_abs() > INT64_MAX + 1:
        return volume
    sign, digits, exponent = volume.as_tuple()
    assert isinstance(exponent, int)  # finite
    kept = list(digits)
    if not any(kept):
        return Decimal(0)
    while exponent < 0 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    if exponent > 0:  # at most 19 digits in all: the bound above
        kept += [0] * exponent
        exponent = 0
    return Decimal((sign, tuple(kept), exponent))


def exact_volume(value: int | float | str | Decimal) -> Decimal:
    """A source's volume as an exact, normalised ``Decimal``: an ``int`` as is, a ``str`` as
    written (``"143539993.3"``), a ``float`` as its shortest repr; more than
    :data:`VOLUME_SCALE` decimal places are rounded half-to-even to that many.

    Raises:
        ValueError: not a finite number, or beyond 2**63 - 1.
    """
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError as exc:  # decimal.InvalidOperation
        raise ValueError(f"volume {value!r} is not a number") from exc
    if not number.is_finite():
        raise ValueError(f"volume {value!r} is not finite")
    if number.copy_abs() > INT64_MAX:
        raise ValueError(f"volume {value!r} is out of range [0, 2**63 - 1]")
    if -number.as_tuple().exponent > VOLUME_SCALE:  # type: ignore[operator]
        number = number.quantize(Decimal(1).scaleb(-VOLUME_SCALE), rounding=ROUND_HALF_EVEN)
    return normalise_volume(number)


def format_volume(volume: Decimal | int) -> str:
    """A volume as its exact JSON number text: ``"2012.25"``, ``"100"`` (never an exponent)."""
    return format(normalise_volume(Decimal(volume)), "f")


class NotAnObjectError(ValueError):
    """The message is JSON, but not a JSON object."""


def parse_message(value: bytes | str) -> TickMessage:
    """A tick message from its raw JSON, reading ``volume`` exactly (``json`` with
    ``parse_float=Decimal``; every other JSON fraction is a binary float, as before).

    Raises:
        json.JSONDecodeError: not JSON.
        NotAnObjectError: JSON, but not an object.
        pydantic.ValidationError: the object is not a valid tick message.
    """
    data = json.loads(value, parse_float=Decimal)
    if not isinstance(data, dict):
        raise NotAnObjectError(f"top-level JSON is {type(data).__name__}, expected object")
    return TickMessage.model_validate(_decimals_to_floats(data))


def _decimals_to_floats(data: dict[str, object]) -> dict[str, object]:
    """``data`` (parsed with ``parse_float=Decimal``) with every top-level decimal other than
    ``volume`` as a float, so those fields read as they would without ``parse_float``."""
    return {key: float(value) if isinstance(value, Decimal) and key != "volume" else value
            for key, value in data.items()}


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
    source: str, ticker: str, event_time: datetime, price: float, volume: int | Decimal,
    position: str,
) -> str:
    """A stable tick id: the first 32 hex digits of SHA-256 over content and source position.

    The same input replayed gives the same id, so Silver can deduplicate replays.

    Args:
        source: source name (``replay``, ``synthetic``).
        ticker: symbol.
        event_time: UTC event time.
        price: trade price (``repr`` of the float is hashed, so it is exact).
        volume: units (hashed as :func:`format_volume` writes it, so a whole-number volume
            hashes as the integer did in v1: ids do not change with the message version).
        position: where the tick comes from inside its source, e.g. ``"2013-03-01#2"`` for the
            third tick of that day's bar, or ``"seed=42#17"`` for a synthetic tick.
    """
    text = "|".join(
        [source, ticker, format_event_time(event_time), repr(float(price)), format_volume(volume),
         position]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _dumps(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
