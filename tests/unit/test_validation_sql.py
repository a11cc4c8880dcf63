"""Silver's validation in Spark SQL (``pipeline.validation_sql``) gives the message model's
verdicts: every message ``classify_ticks`` decides equals ``validate_value``'s row by row,
typed values, reason and detail, on tricky and generated good and bad messages."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from config.tables import BRONZE_TICKS
from pipeline.schemas import spark_schema
from pipeline.silver import classify_ticks
from pipeline.validation_sql import with_sql_verdicts
from tests.unit.test_validation import (
    BAD_INPUTS,
    GOOD,
    GOOD_V2,
    NOW,
    TRICKY,
    mutated,
    per_row,
    v2,
    with_,
)

pytestmark = pytest.mark.spark
MAX_BYTES = 4096
FIELDS = ("schema_version", "tick_id", "ticker", "event_time", "price", "volume", "source",
          "seq", "asset_class", "currency", "reason", "detail")


def bronze(spark, values: list[bytes | None]):
    rows = [{"key": b"k", "value": v, "topic": "t", "partition": 0, "offset": i,
             "timestamp": NOW, "timestampType": 0, "ingest_time": NOW}
            for i, v in enumerate(values)]
    arrow = pa.Table.from_pylist(rows, schema=BRONZE_TICKS.schema)
    return spark.createDataFrame(arrow.to_pandas(), schema=spark_schema(BRONZE_TICKS))


def classified(spark, values: list[bytes | None],
               allowed: frozenset[str] | None = None) -> list[dict]:
    """``classify_ticks`` of ``values`` (now = NOW), in order, as ``per_row`` gives them."""
    out = classify_ticks(bronze(spark, values), MAX_BYTES, 300, allowed,
                         now=F.col("ingest_time")).toArrow().to_pylist()
    assert sorted(r["offset"] for r in out) == list(range(len(values)))
    rows = []
    for r in sorted(out, key=lambda r: r["offset"]):
        rows.append({**{f: r[f] for f in FIELDS}, "volume": r["volume_decimal"]})
        if r["reason"] is None:  # Silver's whole-unit volume: half to even
            assert r["volume"] == int(r["volume_decimal"].quantize(Decimal(1), "ROUND_HALF_EVEN"))
    return rows


def fast_path(spark, values: list[bytes | None]) -> list[bool]:
    """Which values the SQL expressions accept on their own (no Python worker)."""
    frame = with_sql_verdicts(bronze(spark, values), MAX_BYTES, F.col("ingest_time"), 300,
                              None).select("offset", "_sql._accepted")
    return [r["_accepted"] for r in sorted(frame.collect(), key=lambda r: r["offset"])]


def raw(**changes: object) -> bytes:
    """A v2 message as json.dumps writes it without escaping non-ASCII characters."""
    data = {**GOOD_V2, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...},
                      ensure_ascii=False).encode()


def compact(**changes: object) -> bytes:
    """A v2 message as ticklake's producer writes it (no spaces)."""
    data = {**GOOD_V2, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...},
                      separators=(",", ":")).encode()


LATEST = NOW + timedelta(seconds=300)
SQL_TRICKY = [
    compact(), raw(), v2(), with_(asset_class="equity", currency="USD"),
    raw(ticker="AAPL\u2028"), raw(ticker="AAPL\u0085"), raw(currency="USD\u2029"),
    raw(source="ticker"), raw(source='":"'), raw(source="é" * 64), raw(source="é" * 65),
    raw(source="\U0001f600" * 64), raw(source="a\x7fb"), raw(extra=":::"),
    raw(Ticker="bad ticker"), raw(TICKER="AAPL"), compact().replace(b"{", b'{"":1,', 1),
    compact().replace(b'"seq":7', b'"seq":7,"seq":8'),
    compact().replace(b'"ticker"', b'"ticker":"IBM","ticker"'),
    compact().replace(b'"source":"replay"', b'"source":"re\xffplay"'),
    compact().replace(b'"source":"replay"', b'"source":"re\xc0\xafplay"'),
    compact().replace(b'"source":"replay"', b'"source":"re\x00play"'),
    compact().replace(b'"source":"replay"', b'"source":"re\\"play"'),
    compact().replace(b",", b",\t"), compact().replace(b",", b",\x0b"),
    compact().replace(b",", b", \n"), compact().replace(b",", b"\r,"),
    b"\xef\xbb\xbf" + compact(), compact() + b"\x00", b"{" + compact()[1:-1] + b",}",
    compact(schema_version=2.0), compact(schema_version="2"), compact(seq=2**63 - 1),
    compact(seq=2**63), compact(seq=-0.0), compact().replace(b'"seq":7', b'"seq":-0'),
    compact().replace(b'"seq":7', b'"seq":07'), compact().replace(b'"seq":7', b'"seq":7e0'),
    compact(price=1e-320), compact(price=5e-324), compact(price=1.7976931348623157e308),
    compact().replace(b"61234.5", b"1E2"), compact().replace(b"61234.5", b"1e400"),
    compact().replace(b"61234.5", b"-0"), compact().replace(b"61234.5", b"9" * 45),
    compact().replace(b"61234.5", b"0.1" + b"0" * 60 + b"1"),
    compact().replace(b"61234.5", b"9007199254740993"),
    compact().replace(b"2012.25", b"9223372036854775807"),
    compact().replace(b"2012.25", b"9223372036854775807.00000001"),
    compact().replace(b"2012.25", b"9223372036854775806.5"),
    compact().replace(b"2012.25", b"0.5"), compact().replace(b"2012.25", b"2.5"),
    compact().replace(b"2012.25", b"-0"), compact().replace(b"2012.25", b"-0.0"),
    compact().replace(b"2012.25", b"1.000000000"), compact().replace(b"2012.25", b"1E3"),
    compact().replace(b"2012.25", b"99999999999999999999999999999999"),
    compact(event_time="2012-02-29T00:00:00Z"), compact(event_time="2013-02-29T00:00:00Z"),
    compact(event_time="2013-04-31T00:00:00Z"), compact(event_time="2013-03-01T24:00:00Z"),
    compact(event_time="2013-03-01T23:59:60Z"), compact(event_time="2013-13-01T00:00:00Z"),
    compact(event_time="2013-03-01T10:00:00.000000+00:00"),
    compact(event_time="9999-12-31T23:59:59.999999Z"),
    compact(event_time="1000-01-01T00:00:00Z"),
    compact(event_time=LATEST.isoformat().replace("+00:00", "Z")),
    compact(event_time=(LATEST + timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")),
    compact(event_time="2013-03-01T10:00:00,123456Z"),
    compact(event_time="2013-03-01 10:00:00Z"), compact(event_time="2013-03-01T10:00:00z"),
    compact(extra="x" * (MAX_BYTES - len(compact()) - 10)),
    compact(extra="x" * (MAX_BYTES - len(compact()) - 9)),
    compact(**{f"k{i}": i for i in range(70)}), compact(extra=[1, 2]), compact(extra={}),
    compact(extra=None), compact(extra=True), compact(ticker="BRK.B", asset_class="equity"),
    compact(asset_class="Crypto"), compact(asset_class="crypto\u2028"),
    compact(tick_id="a" * 31 + "A"), compact(tick_id="a" * 33), compact(tick_id=5),
    compact(ticker=123), compact(source=7), compact(currency=None), compact(currency="US"),
]


def test_canonical_messages_take_the_sql_path(spark) -> None:
    """What producers write (compact or spaced JSON, v2, or v1 with asset class and currency)
    is accepted in Spark SQL, with the model's typed values; a v1 message without asset
    class is left to the model."""
    values = [compact(seq=i, event_time=f"2013-03-01T14:30:{i:02d}.{i:06d}Z")
              for i in range(20)] + [raw(), v2(), with_(asset_class="equity", currency="USD")]
    assert fast_path(spark, values) == [True] * len(values)
    assert classified(spark, values) == per_row(values)
    assert fast_path(spark, [with_(), with_(ticker="EURUSD=X")]) == [False, False]


def test_each_tricky_value_gets_the_models_verdict(spark) -> None:
    """Values at every edge of the SQL checks (line separators, escapes, invalid UTF-8,
    duplicate and case-variant keys, number forms, 64-bit bounds, calendar and clock edges,
    size and member limits) get the model's verdict, with and without an allow-list."""
    values = [None, *SQL_TRICKY, *TRICKY, *[value for value, _ in BAD_INPUTS]]
    assert classified(spark, values) == per_row(values)
    allowed = frozenset({"BTC-USD", "IBM"})
    assert classified(spark, values, allowed) == per_row(values, allowed)
    assert sum(fast_path(spark, values)) >= 20  # the SQL path decided a good part


spaced = st.sampled_from([(", ", ": "), (",", ":"), (" ,\t", " :  ")])
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
    st.decimals(min_value=-1, max_value=10**20, allow_nan=False, places=9),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["2013-03-01T14:30:00Z", "2013-02-29T14:30:00Z", "2013-03-01T14:30:00.5Z",
                     "2013-03-01T14:30:00.000001+00:00", "AAPL", "crypto", "USD", "a" * 32]))


@st.composite
def messages(draw) -> bytes:
    """A v1 or v2 message with up to three fields changed to any JSON value or removed,
    written with one of several separators."""
    data = dict(draw(st.sampled_from([GOOD_V2, {**GOOD, "asset_class": "equity",
                                                "currency": "USD"}, GOOD])))
    for key in draw(st.lists(st.sampled_from(list(GOOD_V2) + ["extra"]), max_size=3)):
        value = draw(st.one_of(json_values, st.just(...)))
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    separators = draw(spaced)
    text = json.dumps({k: (float(v) if isinstance(v, Decimal) and k != "volume" else v)
                       for k, v in data.items()}, separators=separators,
                      ensure_ascii=draw(st.booleans()), default=str)
    if isinstance(data.get("volume"), Decimal):  # a decimal volume as its JSON number
        text = text.replace(f'"{data["volume"]}"', str(data["volume"]))
    return text.encode()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(st.lists(st.one_of(messages(), mutated, st.binary(max_size=40)), min_size=40,
                max_size=120))
def test_sql_validation_equals_the_model_on_generated_messages(spark, values) -> None:
    """Property: generated good and bad messages (fields changed to any JSON value or
    removed, several separators, random bytes): Spark SQL + the model = the model alone."""
    assert classified(spark, values) == per_row(values)


def test_a_streaming_query_classifies_through_both_paths(spark, tmp_path) -> None:
    """In a streaming query (the silver job's case) the SQL and Python paths read the same
    source: every row comes out once, valid ones typed, the others with their reason."""
    values = [compact(seq=1), b"{not json", compact(seq=2), with_()]
    source = tmp_path / "bronze"
    bronze(spark, values).write.format("delta").save(str(source))
    stream = classify_ticks(spark.readStream.format("delta").load(str(source)), MAX_BYTES,
                            10**9)
    seen: list[dict] = []
    query = (stream.writeStream.trigger(availableNow=True)
             .option("checkpointLocation", str(tmp_path / "checkpoint"))
             .foreachBatch(lambda batch, _: seen.extend(r.asDict() for r in batch.collect()))
             .start())
    query.awaitTermination()
    by_offset = {r["offset"]: r for r in seen}
    assert len(seen) == 4 and sorted(by_offset) == [0, 1, 2, 3]
    assert [by_offset[i]["reason"] for i in range(4)] == [None, "not_json", None, None]
    assert [by_offset[i]["seq"] for i in (0, 2, 3)] == [1, 2, 7]
    assert by_offset[3]["asset_class"] == "equity"  # v1, upcast by the model
    # collect() gives naive datetimes in the session time zone, UTC
    assert by_offset[0]["event_time"].replace(tzinfo=UTC) == datetime(2013, 3, 1, 14, 30,
                                                                      tzinfo=UTC)
