"""Validation rules: every reason code is produced by the input it names."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.reasons import REASON_MEANINGS as REASONS
from pipeline.validation import validate_value, validate_values

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = {"schema_version": 1, "tick_id": "a" * 32, "ticker": "AAPL",
        "event_time": "2013-03-01T14:30:00Z", "price": 430.47, "volume": 100,
        "source": "replay", "seq": 7}


GOOD_V2 = {**GOOD, "schema_version": 2, "ticker": "BTC-USD", "price": 61234.5,
           "volume": 2012.25, "asset_class": "crypto", "currency": "USD"}


def v2(**changes: object) -> bytes:
    data = {**GOOD_V2, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def v2_volume(text: str) -> bytes:
    """A v2 message whose volume is the JSON text ``text``, written as is."""
    return v2().replace(b'"volume": 2012.25', b'"volume": ' + text.encode())


def check(value: bytes | None) -> tuple[object, str | None, str | None]:
    return validate_value(value, NOW, max_message_bytes=4096, max_future_skew_s=300)


def with_(**changes: object) -> bytes:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_a_valid_tick_passes_with_its_values() -> None:
    """A well-formed message gives a typed tick and no reason."""
    tick, reason, detail = check(with_())
    assert reason is None and detail is None
    assert (tick.ticker, tick.price, tick.volume) == ("AAPL", 430.47, 100)
    assert tick.event_time == datetime(2013, 3, 1, 14, 30, tzinfo=UTC)


BAD_INPUTS = [
        (None, "null_value"),
        (b"x" * 5000, "oversize"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"AAPL"', "not_object"),
        (with_(schema_version=3), "unknown_schema_version"),
        (with_(schema_version=...), "missing_field"),
        (with_(price=...), "missing_field"),
        (with_(price="430.47"), "wrong_type"),
        (with_(volume=1.5), "wrong_type"),
        (with_(volume=True), "wrong_type"),
        (with_(ticker="aapl"), "ticker_malformed"),
        (with_(ticker="TOOLONGTICKER"), "ticker_malformed"),
        (with_(tick_id="xyz"), "tick_id_malformed"),
        (with_(price=0), "price_not_positive"),
        (with_(price=-1.5), "price_not_positive"),
        (b'{"schema_version":1,"tick_id":"' + b"a" * 32 + b'","ticker":"AAPL","event_time":'
         b'"2013-03-01T14:30:00Z","price":NaN,"volume":1,"source":"r","seq":1}',
         "price_not_finite"),
        (with_(price=1e999), "price_not_finite"),
        (with_(volume=-1), "volume_negative"),
        (with_(event_time="yesterday"), "event_time_invalid"),
        (with_(event_time="2013-03-01T14:30:00"), "event_time_invalid"),
        (with_(event_time="2026-11-22T12:10:00Z"), "event_time_future"),
        (with_(seq=-1), "invalid_field"),
        (with_(volume=10.0), "wrong_type"),  # v1: a JSON integer
        (v2(asset_class=...), "missing_field"),
        (v2(currency=...), "missing_field"),
        (v2(asset_class="stock"), "invalid_field"),
        (v2(currency="usd"), "invalid_field"),
        (v2_volume("0.123456789"), "invalid_field"),  # more than 8 decimal places
        (v2_volume('"12"'), "wrong_type"),
        (v2_volume("-0.5"), "volume_negative"),
        (v2_volume("1e400"), "invalid_field"),
        (v2_volume("1e100000000"), "invalid_field"),  # refused, not expanded to 10**(10**8)
        (v2_volume("-1e100000000"), "volume_negative"),
        (v2_volume("1e-100000000"), "invalid_field"),  # 10**8 decimal places, not 0
]


@pytest.mark.parametrize(("value", "reason"), BAD_INPUTS)
def test_each_bad_input_gets_its_reason(value: bytes | None, reason: str) -> None:
    """Each malformed message is rejected with the documented reason code and a detail."""
    tick, got, detail = check(value)
    assert tick is None and got == reason and detail
    assert got in REASONS


def test_event_time_within_the_allowed_skew_is_accepted() -> None:
    """An event time 4 minutes ahead of now is within max_future_skew_s=300."""
    tick, reason, _ = check(with_(event_time="2026-11-22T12:04:00Z"))
    assert reason is None and tick is not None


def test_the_allow_list_quarantines_unknown_tickers_only() -> None:
    """With an allow-list, a well-formed tick of another ticker is `ticker_unknown`; listed
    tickers pass; a malformed ticker keeps its own reason; no list accepts any ticker."""
    allowed = frozenset({"AAPL", "IBM"})
    tick, reason, detail = validate_value(with_(ticker="ZZZZ"), NOW, 4096, 300, allowed)
    assert tick is None and reason == "ticker_unknown" and "ZZZZ" in detail
    assert reason in REASONS
    assert validate_value(with_(ticker="IBM"), NOW, 4096, 300, allowed)[1] is None
    assert validate_value(with_(ticker="zz"), NOW, 4096, 300, allowed)[1] == "ticker_malformed"
    assert validate_value(with_(ticker="ZZZZ"), NOW, 4096, 300, None)[1] is None


def test_the_allow_list_setting_is_parsed_and_checked() -> None:
    from pydantic import ValidationError

    from config.settings import Settings

    assert Settings(ticker_allowlist="AAPL, IBM").ticker_allowlist == ("AAPL", "IBM")
    assert Settings().ticker_allowlist is None
    with pytest.raises(ValidationError, match="invalid ticker"):
        Settings(ticker_allowlist="AAPL,bad one")


def test_volume_or_seq_beyond_64_bits_is_quarantined_not_a_crash() -> None:
    """Silver stores volume and seq as int64: a larger JSON integer is `invalid_field` (it
    used to pass validation and then fail the Arrow conversion of the whole micro-batch)."""
    assert check(with_(volume=2**63 - 1))[1] is None
    assert check(with_(volume=2**63))[1] == "invalid_field"
    assert check(with_(seq=2**70))[1] == "invalid_field"


# --- whole batches: validate_values must give exactly validate_value's verdicts ---------

def per_row(values: list[bytes | None], allowed: frozenset[str] | None = None) -> list[dict]:
    rows = []
    for value in values:
        tick, reason, detail = validate_value(value, NOW, 4096, 300, allowed)
        fields = {f: (getattr(tick, f) if tick else None) for f in
                  ("schema_version", "tick_id", "ticker", "event_time", "price", "volume",
                   "source", "seq", "asset_class", "currency")}
        rows.append({**fields, "reason": reason, "detail": detail})
    return rows


def batch(values: list[bytes | None], allowed: frozenset[str] | None = None) -> list[dict]:
    return validate_values(pa.array(values, pa.binary()), NOW, 4096, 300, allowed).to_pylist()


TRICKY = [
    with_(), with_(price=5), with_(price=-0.0), with_(volume=2**63 - 1), with_(volume=2**64),
    with_(event_time="2013-02-30T10:00:00Z"), with_(event_time="2013-03-01T23:59:60Z"),
    with_(event_time="2013-03-01T24:00:00Z"), with_(event_time="2013-03-01T10:00:00.123456Z"),
    with_(event_time="2013-03-01T10:00:00.123Z"), with_(event_time="2013-03-01T10:00:00+01:00"),
    with_(event_time="2013-03-01T10:00:00+00:00"), with_(event_time="0999-03-01T10:00:00Z"),
    with_(ticker="BRK.B"), with_(ticker="\u00c4PPL"), with_(source=""), with_(source="x" * 65),
    with_(extra={"nested": [1, {"a": None}]}), with_() + b" ", b" " + with_(), b"",
    with_().replace(b'"price"', b'"price":1,"price"'),  # duplicate key
    with_().replace(b"AAPL", b"\\u0041APL"), b'{"a":1}\n{"b":2}', with_() + with_(),
    with_(schema_version=True), with_(schema_version=1.0), with_(tick_id="A" * 32),
    with_(event_time="2026-11-22T12:04:59Z"), with_(event_time="2026-11-22T12:05:01Z"),
    with_().replace(b"430.47", b"NaN"), with_().replace(b"430.47", b"Infinity"),
    with_(schema_version=2**40), with_(schema_version=-1), with_(seq=2**62),
    v2(), v2(volume=7), v2(ticker="EURUSD=X", asset_class="fx"), v2_volume("1e3"),
    v2_volume("0.00000001"), v2_volume("12345678901234567.12345678"), v2_volume('"12"'),
    v2_volume("10.0"), v2_volume("9223372036854775807.5"), v2_volume("0.123456789"),
    v2().replace(b'"volume"', b'"vol\\u0075me"'), v2(asset_class="FX"),
    with_(asset_class="index", currency="EUR"), with_(asset_class="bond"), with_(currency=5),
    with_(volume=10.0), with_(ticker="EURUSD=X"), with_(ticker="VOD.L"),
]


@pytest.mark.parametrize("value", TRICKY)
def test_batch_validation_gives_the_row_by_row_verdict_of_each_tricky_value(value) -> None:
    """Between two valid messages, the column-wise path accepts a value only if the row-by-row
    validator does, with the same typed values; otherwise the value gets the row-by-row
    reason and detail, and its valid neighbours stay valid."""
    values = [with_(), value, with_(ticker="IBM")]
    assert batch(values) == per_row(values)
    assert batch(values, frozenset({"AAPL"})) == per_row(values, frozenset({"AAPL"}))


def test_well_formed_messages_take_the_column_wise_path(monkeypatch) -> None:
    """Canonical valid messages are decided without the row-by-row validator at all."""
    import pipeline.validation as validation

    values = [with_(seq=i, event_time=f"2013-03-01T14:30:{i:02d}.{i:06d}Z") for i in range(60)]
    expected = per_row(values)
    monkeypatch.setattr(validation, "validate_value", lambda *a: pytest.fail("row by row"))
    assert batch(values) == expected
    assert [row["seq"] for row in expected] == list(range(60))


def test_batch_validation_of_the_bad_inputs_gives_their_reasons() -> None:
    """Every value of the reason table above, in one batch, gets its reason."""
    values = [value for value, _ in BAD_INPUTS]
    got = batch(values)
    assert [row["reason"] for row in got] == [reason for _, reason in BAD_INPUTS]
    assert got == per_row(values)


def test_a_v2_volume_is_read_exactly_on_both_paths() -> None:
    """A 25-digit decimal volume (no binary float holds it) arrives digit for digit, whether
    the column-wise or the row-by-row path decides the message."""
    from decimal import Decimal

    exact = Decimal("12345678901234567.12345678")
    value = v2_volume(str(exact))
    assert check(value)[0].volume == exact
    rows = batch([value, value + b" "])  # the second one takes the row-by-row path
    assert [row["volume"] for row in rows] == [exact, exact]
    assert [row["reason"] for row in rows] == [None, None]


def test_a_v1_message_is_upcast_from_its_ticker() -> None:
    """v1 has no asset class or currency: both come from the ticker, on both paths."""
    values = [with_(ticker="EURUSD=X"), with_(ticker="0700.HK"), with_(ticker="^FTSE") + b" "]
    rows = batch(values)
    assert [(r["asset_class"], r["currency"], r["schema_version"]) for r in rows] == [
        ("fx", "USD", 1), ("equity", "HKD", 1), ("index", "GBP", 1)]
    assert rows == per_row(values)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.integers(2**31, 2**63 - 1),
                         st.floats(allow_nan=False), st.text(max_size=12))
mutated = st.one_of(
    st.builds(lambda k, v: with_(**{k: v}), st.sampled_from(list(GOOD)), json_scalars),
    st.builds(lambda k, v: v2(**{k: v}), st.sampled_from(list(GOOD_V2)), json_scalars),
    st.builds(lambda v: v2_volume(str(v)), st.decimals(min_value=-1, max_value=10**20,
                                                         allow_nan=False, places=9)),
    st.builds(lambda k: with_(**{k: ...}), st.sampled_from(list(GOOD))), st.just(with_()))


@settings(max_examples=200, deadline=None)
@given(st.lists(mutated, min_size=1, max_size=30))
def test_batch_validation_equals_row_by_row_on_mutated_messages(values: list[bytes]) -> None:
    """Property: JSON objects with any field changed to any JSON scalar or removed (what
    pyarrow parses, so the column-wise checks decide): batch = row by row."""
    assert batch(values) == per_row(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(mutated, st.binary(max_size=40)), min_size=1, max_size=30))
def test_batch_validation_equals_row_by_row_with_random_bytes(values: list[bytes]) -> None:
    """Property: mixed with random bytes (chunks pyarrow refuses): batch = row by row."""
    assert batch(values) == per_row(values)


@pytest.mark.parametrize("ticker", ["AAPL", "BRK.B", "BRK-B", "^GSPC", "^STOXX50E", "EURUSD=X",
                                    "BTC-USD", "GC=F", "0700.HK", "RELIANCE.NS"])
def test_yahoo_symbols_are_well_formed(ticker: str) -> None:
    """Index, FX, crypto, futures and non-US symbols as Yahoo writes them pass, in the message
    and in the settings."""
    from config.settings import Settings

    tick, reason, _ = check(with_(ticker=ticker))
    assert reason is None and tick.ticker == ticker
    assert Settings(tickers=ticker).tickers == (ticker,)


@pytest.mark.parametrize("ticker", ["^^GSPC", "^", "=X", "-USD", ".B", "A/B", "../AAPL",
                                    "BTC USD", "eurusd=x", "AAPL\n", "TOOLONGTICKER", ""])
def test_malformed_symbols_are_quarantined_and_refused_in_settings(ticker: str) -> None:
    from pydantic import ValidationError

    from config.settings import Settings

    assert check(with_(ticker=ticker))[1] == "ticker_malformed"
    if ticker.strip():
        with pytest.raises(ValidationError, match="an optional '\\^'"):
            Settings(tickers=[ticker])
