"""Offset planning of the Kafka source (pure functions, no broker)."""

import numpy as np
import pytest

from pipeline.connectors.kafka_source import (
    KafkaSourceError,
    librdkafka_config,
    parse_starting_offsets,
    split_by_max_rows,
)


def test_max_rows_caps_the_batch_in_proportion_to_lag() -> None:
    """maxOffsetsPerTrigger=100 over lags 300/100/0 gives 75/25/0."""
    start = {"t": {"0": 0, "1": 50, "2": 7}}
    end = {"t": {"0": 300, "1": 150, "2": 7}}
    assert split_by_max_rows(start, end, 100) == {"t": {"0": 75, "1": 75, "2": 7}}


def test_max_rows_never_exceeds_budget_and_always_progresses() -> None:
    """Over random lags: never more than max_rows, never past end, and > 0 while lag remains."""
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(1, 8))
        start = {"t": {str(p): int(rng.integers(0, 100)) for p in range(n)}}
        end = {"t": {p: o + int(rng.integers(0, 1000)) for p, o in start["t"].items()}}
        budget = int(rng.integers(1, 3000))
        capped = split_by_max_rows(start, end, budget)
        moved = [capped["t"][p] - start["t"][p] for p in start["t"]]
        lag = sum(end["t"][p] - start["t"][p] for p in start["t"])
        assert all(0 <= capped["t"][p] <= end["t"][p] for p in start["t"]) and min(moved) >= 0
        assert sum(moved) == min(budget, lag)


def test_starting_offsets_accepts_spark_forms() -> None:
    """earliest, latest and Spark's per-partition JSON are understood."""
    assert parse_starting_offsets("EARLIEST", ["t"]) == "earliest"
    assert parse_starting_offsets('{"t": {"0": 5, "1": -2}}', ["t"]) == {"t": {"0": 5, "1": -2}}


@pytest.mark.parametrize("value", ["beginning", '{"other": {"0": 1}}', "[1]"])
def test_bad_starting_offsets_say_what_is_allowed(value: str) -> None:
    """Anything else is refused with the accepted forms."""
    with pytest.raises(KafkaSourceError, match="startingOffsets"):
        parse_starting_offsets(value, ["t"])


def test_kafka_options_are_passed_to_librdkafka_without_prefix() -> None:
    """kafka.* options become librdkafka settings; bootstrap servers are required."""
    conf = librdkafka_config({"kafka.bootstrap.servers": "h:1", "kafka.security.protocol": "SSL",
                              "subscribe": "t"})
    assert conf["bootstrap.servers"] == "h:1" and conf["security.protocol"] == "SSL"
    assert "subscribe" not in conf and conf["enable.auto.commit"] is False
    with pytest.raises(KafkaSourceError, match="kafka.bootstrap.servers"):
        librdkafka_config({"subscribe": "t"})
