"""The one settings object."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import Settings, load_settings


def test_defaults_are_the_embedded_run() -> None:
    """Defaults: Apache Kafka on 127.0.0.1:9092, topic market.ticks x4, ./lake, five tickers."""
    s = Settings()
    assert (s.bootstrap_servers, s.topic, s.topic_partitions) == ("127.0.0.1:9092", "market.ticks", 4)
    assert s.lake_dir == Path("lake") and s.checkpoints == Path("lake/_checkpoints")
    assert s.tickers == ("AAPL", "IBM", "MSFT", "GOOG", "FB")


def test_environment_overrides_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """TICKLAKE_* variables override defaults; CLI overrides beat the environment."""
    monkeypatch.setenv("TICKLAKE_TOPIC", "ticks.test")
    monkeypatch.setenv("TICKLAKE_TICKERS", "IBM, MSFT")
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", "/tmp/x")
    s = load_settings(lake_dir=Path("/tmp/y"), bootstrap_servers=None)
    assert s.topic == "ticks.test" and s.tickers == ("IBM", "MSFT") and s.lake_dir == Path("/tmp/y")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("topic_partitions", 0, "greater than or equal to 1"),
        ("bootstrap_servers", "localhost", "HOST:PORT with PORT in 1..65535"),
        ("bootstrap_servers", "h:99999", "HOST:PORT with PORT in 1..65535"),
        ("tickers", "AAPL,bad!", "invalid ticker"),
        ("bar_intervals", "1m,7m,1h,1d", r"'7m' is not Nm \(minutes, N = 1-59\)"),
        ("bar_intervals", "1m,90m,1h,1d", "'90m' is not Nm"),
        ("bar_intervals", "5m,1h", r"lack \['1d'\]"),
        ("bar_intervals", "1h,24h,1d", "'24h' is not"),
        ("streaming_mode", "fused", "'layers' or 'live'"),
        ("broker_heap", "512", "should match pattern"),
        ("spark_driver_java_options", "XX:TieredStopAtLevel=1", "should match pattern"),
    ],
)
def test_bad_values_name_the_value_and_the_allowed_range(field: str, value: object,
                                                         message: str) -> None:
    """A bad setting raises with the field, and what is allowed."""
    with pytest.raises(ValidationError, match=message) as info:
        Settings(**{field: value})
    assert field in str(info.value)


def test_producer_linger_is_5_ms_unless_set() -> None:
    """The producer waits 5 ms to fill a batch; an explicit setting wins."""
    from config.kafka import client_config

    assert client_config(Settings(), "producer")["linger.ms"] == 5
    assert client_config(Settings(producer_linger_ms=20), "producer")["linger.ms"] == 20


def test_bar_intervals_come_sorted_by_length_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """TICKLAKE_BAR_INTERVALS in any order: shortest first, as Gold writes and the dashboard
    lists them; the default is 1m, 5m, 1h, 1d."""
    assert Settings().bar_intervals == ("1m", "5m", "1h", "1d")
    monkeypatch.setenv("TICKLAKE_BAR_INTERVALS", "1d, 4h,15m 1h")
    assert load_settings().bar_intervals == ("15m", "1h", "4h", "1d")


def test_the_streaming_mode_names_the_jobs_ticklake_up_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`layers` (default) runs the three per-layer jobs, `live` the one live query."""
    assert Settings().streaming_jobs == ("bronze", "silver", "gold")
    monkeypatch.setenv("TICKLAKE_STREAMING_MODE", "live")
    assert Settings().streaming_jobs == ("live",)


def test_the_driver_jvm_gets_the_pretouch_flags_then_the_extra_java_options() -> None:
    """spark.driver.extraJavaOptions of a job that starts its own JVM: the heap flags of
    spark_driver_pretouch first, then TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS (HotSpot lets the
    last of two equal flags win); none of them, no such setting."""
    from pipeline.spark import driver_jvm_conf

    both = driver_jvm_conf(Settings(spark_driver_memory="2g",
                                    spark_driver_java_options="-XX:TieredStopAtLevel=1 -Xss4m"))
    assert both == {"spark.driver.memory": "2g", "spark.driver.extraJavaOptions":
                    "-Xms2g -XX:+AlwaysPreTouch -XX:TieredStopAtLevel=1 -Xss4m"}
    assert driver_jvm_conf(Settings(spark_driver_pretouch=False,
                                    spark_driver_java_options="")) == {
        "spark.driver.memory": "1g"}
