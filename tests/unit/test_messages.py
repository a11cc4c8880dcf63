"""The tick message contract."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from producer.messages import TickMessage, format_event_time, make_tick_id

T0 = datetime(2013, 3, 1, 14, 30, tzinfo=UTC)


def tick(**overrides: object) -> TickMessage:
    fields = dict(schema_version=1, tick_id="0" * 32, ticker="AAPL", event_time=T0,
                  price=430.47, volume=100, source="replay", seq=7)
    fields.update(overrides)
    return TickMessage(**fields)


def test_json_round_trip_keeps_every_field_exactly() -> None:
    """It serialises to JSON and parses back to an equal message (price bit-exact)."""
    original = tick(price=0.1 + 0.2)
    parsed = TickMessage.model_validate_json(original.to_json_bytes())
    assert parsed == original
    assert parsed.price == 0.1 + 0.2


def test_event_time_is_written_in_utc_with_z() -> None:
    """Event time goes on the wire as ISO-8601 UTC with a Z suffix."""
    assert b'"event_time":"2013-03-01T14:30:00Z"' in tick().to_json_bytes()
    assert format_event_time(T0 + timedelta(microseconds=5)) == "2013-03-01T14:30:00.000005Z"


def test_other_offsets_are_normalised_to_utc() -> None:
    """A +02:00 event time is converted to the same instant in UTC."""
    local = datetime(2013, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=2)))
    assert tick(event_time=local).event_time == T0
    assert tick(event_time=local).event_time.utcoffset() == timedelta(0)


def test_naive_event_time_is_rejected() -> None:
    """A naive datetime has no defined instant and is refused."""
    with pytest.raises(ValidationError, match="time zone"):
        tick(event_time="2013-03-01T14:30:00")


def test_tick_id_is_stable_and_content_sensitive() -> None:
    """The same content and position give the same id; any change gives another."""
    base = make_tick_id("replay", "AAPL", T0, 430.47, 100, "2013-03-01#0")
    assert base == make_tick_id("replay", "AAPL", T0, 430.47, 100, "2013-03-01#0")
    assert len(base) == 32 and int(base, 16) >= 0
    variants = {
        make_tick_id("replay", "MSFT", T0, 430.47, 100, "2013-03-01#0"),
        make_tick_id("replay", "AAPL", T0 + timedelta(seconds=1), 430.47, 100, "2013-03-01#0"),
        make_tick_id("replay", "AAPL", T0, 430.48, 100, "2013-03-01#0"),
        make_tick_id("replay", "AAPL", T0, 430.47, 101, "2013-03-01#0"),
        make_tick_id("replay", "AAPL", T0, 430.47, 100, "2013-03-01#1"),
        make_tick_id("synthetic", "AAPL", T0, 430.47, 100, "2013-03-01#0"),
    }
    assert base not in variants and len(variants) == 6


def test_tick_id_is_the_documented_sha256_pinned_by_hand() -> None:
    """tick_id = first 32 hex digits of SHA-256 over 'source|ticker|event_time|price|volume|
    position' (README). Pinned: the digest below was computed outside Python with
    `printf '%s' 'replay|IBM|2013-03-01T14:30:00Z|201.5|1200|2013-03-01#0' | sha256sum`."""
    import hashlib

    text = "replay|IBM|2013-03-01T14:30:00Z|201.5|1200|2013-03-01#0"
    assert hashlib.sha256(text.encode()).hexdigest()[:32] == "6bb2f55433487bafd0a6dccdcfe279bf"
    assert make_tick_id("replay", "IBM", T0, 201.5, 1200, "2013-03-01#0") == \
        "6bb2f55433487bafd0a6dccdcfe279bf"


def test_a_v2_message_round_trips_with_its_exact_decimal_volume() -> None:
    """v2 carries asset class, currency and a decimal volume; the JSON holds the volume as the
    exact number (no float repr, no exponent) and parses back equal."""
    from decimal import Decimal

    from producer.messages import parse_message

    original = tick(schema_version=2, ticker="BTC-USD", volume=Decimal("2012.25000"),
                    asset_class="crypto", currency="USD")
    text = original.to_json_bytes()
    assert b'"volume":2012.25,' in text and b'"asset_class":"crypto"' in text
    assert parse_message(text) == original and parse_message(text).volume == Decimal("2012.25")
    tiny = tick(schema_version=2, volume=Decimal("1E-8"), asset_class="equity", currency="USD")
    assert b'"volume":0.00000001,' in tiny.to_json_bytes()


def test_a_v1_message_is_upcast_and_written_back_as_v1() -> None:
    """A v1 message gets its asset class and currency from the ticker; it still says version
    1 and serialises without the v2 fields."""
    from producer.messages import parse_message

    v1 = tick(ticker="EURUSD=X")
    assert (v1.schema_version, v1.asset_class, v1.currency) == (1, "fx", "USD")
    assert b"asset_class" not in v1.to_json_bytes()
    assert parse_message(v1.to_json_bytes()) == v1


def test_v2_requires_its_fields_and_v1_a_whole_volume() -> None:
    from decimal import Decimal

    with pytest.raises(ValidationError, match="a v2 message carries asset_class"):
        tick(schema_version=2, currency="USD")
    with pytest.raises(ValidationError, match="JSON integer"):
        tick(volume=Decimal("1.5"))
    with pytest.raises(ValidationError, match="8 decimal places"):
        tick(schema_version=2, volume=Decimal("0.123456789"), asset_class="fx", currency="USD")


def test_a_whole_volume_hashes_as_the_v1_integer_did() -> None:
    """Tick ids do not depend on the message version: volume 1200 as an int, a Decimal or
    Decimal('1200.00') gives the pinned v1 id above; a fraction is hashed as written."""
    from decimal import Decimal

    pinned = "6bb2f55433487bafd0a6dccdcfe279bf"
    for volume in (1200, Decimal(1200), Decimal("1200.00"), Decimal("1.2E+3")):
        assert make_tick_id("replay", "IBM", T0, 201.5, volume, "2013-03-01#0") == pinned
    assert make_tick_id("replay", "IBM", T0, 201.5, Decimal("1200.5"), "2013-03-01#0") != pinned
