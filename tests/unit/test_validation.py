"""Validation rules: every reason code is produced by the input it names."""

import json
from datetime import UTC, datetime

import pytest

from config.reasons import REASON_MEANINGS as REASONS
from pipeline.validation import validate_value

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = {"schema_version": 1, "tick_id": "a" * 32, "ticker": "AAPL",
        "event_time": "2013-03-01T14:30:00Z", "price": 430.47, "volume": 100,
        "source": "replay", "seq": 7}


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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null_value"),
        (b"x" * 5000, "oversize"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"AAPL"', "not_object"),
        (with_(schema_version=2), "unknown_schema_version"),
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
    ],
)
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
