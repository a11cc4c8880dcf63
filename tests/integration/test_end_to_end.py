"""Real broker (Apache Kafka) + real Spark: one real ticker through Bronze, Silver and Gold."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute
import pytest
from confluent_kafka import Producer

from config.reasons import Reason
from config.settings import Settings
from config.tables import SILVER_QUARANTINE, SILVER_TICKS, lake_tables
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.delta import read_table
from storage.facts import lake_status
from ticklake.broker import ensure_topic
from ticklake.verify import compare_with_lake

pytestmark = [pytest.mark.integration, pytest.mark.spark]

def tick_json(tick_id: str, **fields: str) -> bytes:
    """A tick message as raw JSON text, with some fields replaced by raw JSON snippets."""
    body = {"schema_version": "1", "tick_id": f'"{tick_id * 32}"', "ticker": '"IBM"',
            "event_time": '"2012-01-03T14:30:00Z"', "price": "3.5", "volume": "10",
            "source": '"t"', "seq": "1", **fields}
    return ("{" + ",".join(f'"{k}":{v}' for k, v in body.items()) + "}").encode()


BAD_MESSAGES = {
    b"not json at all": "not_json",
    b"\xff\xfe\xfd": "not_utf8",
    b"[1,2,3]": "not_object",
    b'{"schema_version":1}': "missing_field",
    b'{"schema_version":9,"tick_id":"x"}': "unknown_schema_version",
    tick_json("e", price="-3.5"): "price_not_positive",
    tick_json("f", volume="-10"): "volume_negative",
    tick_json("1", price='"3.5"'): "wrong_type",
    tick_json("2", price="NaN"): "price_not_finite",
    tick_json("3", ticker='"ibm!"'): "ticker_malformed",
    tick_json("g"): "tick_id_malformed",  # 32 x 'g' is not hex
    tick_json("7", seq="-1"): "invalid_field",
    tick_json("6", ticker='"MSFT"'): "ticker_unknown",  # well-formed, not in the allow-list
    tick_json("4", event_time='"03/01/2013"'): "event_time_invalid",
    tick_json("5", event_time='"2099-01-03T14:30:00Z"'): "event_time_future",
    b'{"pad":"' + b"x" * 70_000 + b'"}': "oversize",
    # tick v2: it names its asset class and currency; its volume has at most 8 decimals
    tick_json("8", schema_version="2", asset_class='"equity"'): "missing_field",
    tick_json("9", schema_version="2", asset_class='"equity"', currency='"USD"',
              volume="0.123456789"): "invalid_field",
    tick_json("a", schema_version="2", asset_class='"bond"', currency='"USD"'): "invalid_field",
    tick_json("b", volume="1.5"): "wrong_type",  # v1: a JSON integer
    # valid, but 12 years behind IBM's watermark (its last replayed day is 2013-03-01)
    tick_json("d", event_time='"2001-01-03T14:30:00Z"', price="90.5"): "late",
}


@pytest.fixture(scope="module")
def settings(broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    lake = tmp_path_factory.mktemp("e2e") / "lake"
    return broker.with_overrides(lake_dir=lake, topic="e2e.ticks", ticker_allowlist=("IBM",))


def test_real_ticker_round_trip_then_bad_input_and_replay(spark, settings: Settings) -> None:
    """IBM 2000-2013 replayed: Gold bars equal the source bars exactly, Bronze equals what was
    produced; then malformed messages (one per reason code), a tombstone, a late tick and a
    partial replay are quarantined with their reasons and raw bytes, bronze = silver +
    quarantine still holds and Gold is unchanged."""
    from pipeline.jobs import run_jobs

    assert ensure_topic(settings) == 4
    source = ReplaySource(["IBM"])
    report = publish(source.ticks(), settings, total=source.expected_count(), progress=False)
    assert report.produced == source.expected_count() == 3270 * 4 and report.failed == 0

    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    status = lake_status(settings.lake_dir)
    recon = status["reconciliation"]
    assert recon["bronze"] == report.produced
    assert recon["silver"] == report.produced and recon["quarantine"] == 0
    round_trip = compare_with_lake(source.bars, settings.lake_dir)
    assert round_trip["tickers"]["IBM"] == {
        "source_bars": 3270, "gold_bars": 3270, "equal": 3270, "missing": 0, "extra": 0,
        "different": 0}

    # Phase 2: bad input and a replay of the last 25 days (100 duplicate ticks).
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for value in BAD_MESSAGES:
        producer.produce(settings.topic, key=b"IBM", value=value)
    producer.produce(settings.topic, key=b"IBM", value=None)  # a tombstone
    producer.flush(30)
    replay = ReplaySource(["IBM"], limit_days=25)
    publish(replay.ticks(), settings, progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    recon = lake_status(settings.lake_dir)["reconciliation"]
    expected_bronze = report.produced + len(BAD_MESSAGES) + 1 + 100
    assert recon["bronze"] == expected_bronze
    assert recon["silver"] == report.produced
    assert recon["duplicates"] == 100
    assert recon["bronze"] == recon["silver"] + recon["quarantine"] and recon["balanced"]
    quarantine = read_table(SILVER_QUARANTINE, settings.lake_dir).to_pylist()
    by_value = {row["raw_value"]: row for row in quarantine}
    assert by_value[None]["reason"] == "null_value"
    for value, reason in BAD_MESSAGES.items():
        assert by_value[value]["reason"] == reason
        assert by_value[value]["topic"] == settings.topic and by_value[value]["offset"] >= 0
    # every reason code of the closed set was produced by the real pipeline
    assert {row["reason"] for row in quarantine} == {reason.value for reason in Reason}
    silver_ids = read_table(SILVER_TICKS, settings.lake_dir, ["tick_id"]).column("tick_id")
    assert len(set(silver_ids.to_pylist())) == len(silver_ids)
    assert compare_with_lake(source.bars, settings.lake_dir)["all_equal"]
    assert_every_table_reads_the_same_with_spark_and_delta_rs(spark, settings)


def assert_every_table_reads_the_same_with_spark_and_delta_rs(spark, settings: Settings
                                                              ) -> None:
    """Every table the jobs wrote opens with delta-rs (the dashboard's, the API's and
    training's reader) and with plain ``spark.read.format("delta")``: the same columns, the
    same number of rows and, per table, the same sum of a numeric column."""
    from pyspark.sql import functions as F

    written = [t for t in lake_tables(settings.lake_dir)
               if (t.path(settings.lake_dir) / "_delta_log").is_dir()]
    assert {t.name for t in written} >= {"bronze.ticks", "silver.ticks", "silver.quarantine",
                                         "gold.bars_1m", "gold.bars_1d", "gold.daily_metrics"}
    for table in written:
        arrow = read_table(table, settings.lake_dir)
        frame = spark.read.format("delta").load(str(table.path(settings.lake_dir)))
        assert frame.columns == arrow.schema.names, table.name
        assert frame.count() == arrow.num_rows, table.name
        numeric = next((f.name for f in arrow.schema if pa.types.is_integer(f.type)), None)
        if numeric is not None and arrow.num_rows:
            spark_sum = frame.agg(F.sum(numeric)).first()[0]
            assert spark_sum == pa.compute.sum(arrow.column(numeric)).as_py(), table.name


def test_the_watermark_is_per_ticker(spark, broker: Settings, tmp_path) -> None:
    """MSFT replayed up to 2013-03-01 first, then FB from its first day (2012-05-18): FB's
    ticks are up to ~10 months behind MSFT's watermark but none is quarantined as late,
    because each ticker has its own watermark."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="watermark.ticks")
    ensure_topic(settings)
    msft = ReplaySource(["MSFT"], limit_days=30)
    publish(msft.ticks(), settings, progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
    fb = ReplaySource(["FB"])
    assert fb.bars["day"].min() < msft.bars["day"].min()
    publish(fb.ticks(), settings, progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    recon = lake_status(settings.lake_dir)["reconciliation"]
    assert recon["quarantine"] == 0 and recon["by_reason"] == {}
    assert recon["silver"] == msft.expected_count() + fb.expected_count()
    assert compare_with_lake(fb.bars, settings.lake_dir)["all_equal"]


def test_real_hourly_fx_bars_round_trip_through_gold_bars_1h(
        spark, broker: Settings, tmp_path, eurusd_1h_csv) -> None:
    """gym-anytrading's 6,225 real EURUSD hourly bars of 2017 replayed from their CSV:
    ``gold/bars_1h`` equals the source bars on every hour (fractional volumes exactly, in
    ``volume_decimal``: tick v2 carries decimal volumes), nothing is quarantined and the lake
    reconciles."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="fx.ticks")
    ensure_topic(settings)
    source = ReplaySource(["EURUSD=X"], [eurusd_1h_csv])
    report = publish(source.ticks(), settings, total=source.expected_count(), progress=False)
    assert report.produced == 6225 * 4 and report.failed == 0
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    recon = lake_status(settings.lake_dir)["reconciliation"]
    assert recon["silver"] == report.produced and recon["quarantine"] == 0 and recon["balanced"]
    round_trip = compare_with_lake(source.bars, settings.lake_dir)
    assert round_trip["tickers"]["EURUSD=X"] == {
        "source_bars": 6225, "gold_bars": 6225, "equal": 6225, "missing": 0, "extra": 0,
        "different": 0}
