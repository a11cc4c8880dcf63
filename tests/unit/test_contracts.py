"""Contracts defined once: these tests fail when two sides of a contract disagree."""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from config.reasons import REASON_MEANINGS, Reason
from config.tables import (
    ALL_TABLES,
    BRONZE_TICKS,
    GOLD_ANOMALIES,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    SILVER_QUARANTINE,
    SILVER_TICKS,
    UTC_TS,
    bar_table,
    lake_tables,
)
from producer.messages import TickMessage

ROOT = Path(__file__).resolve().parents[2]
KAFKA_POSITION = ["topic", "partition", "offset", "kafka_timestamp", "ingest_time"]
ARROW_OF_PYTHON = {int: {pa.int32(), pa.int64()}, float: {pa.float64()}, str: {pa.string()},
                   datetime: {UTC_TS}}


def test_the_tick_message_and_silver_have_the_same_fields_and_types() -> None:
    """Every field of the message model is a Silver column of a matching type (its exact
    volume is ``volume_decimal``, and ``volume`` the whole units a v1 reader expects), and
    Silver has no other column but the Kafka position."""
    from decimal import Decimal

    from config.tables import VOLUME_DECIMAL

    silver = SILVER_TICKS.schema
    message = TickMessage.model_fields
    assert set(silver.names) - set(message) == {*KAFKA_POSITION, "volume_decimal"}
    assert silver.field("volume").type == pa.int64()
    for name, field in message.items():
        python_type = field.annotation
        if typing.get_origin(python_type) is typing.Literal:
            python_type = type(typing.get_args(python_type)[0])
        elif typing.get_origin(python_type) in (typing.Union, type(int | None)):
            python_type = next(a for a in typing.get_args(python_type) if a is not type(None))
            if typing.get_origin(python_type) is typing.Literal:
                python_type = type(typing.get_args(python_type)[0])
        if python_type is Decimal:
            assert silver.field(f"{name}_decimal").type == VOLUME_DECIMAL, name
        else:
            assert silver.field(name).type in ARROW_OF_PYTHON[python_type], name


def test_quarantine_keeps_the_kafka_position_of_silver() -> None:
    """Quarantine rows carry the same lineage columns, of the same types, as Silver rows."""
    for name in KAFKA_POSITION:
        assert SILVER_QUARANTINE.schema.field(name) == SILVER_TICKS.schema.field(name)


@pytest.mark.spark
def test_the_kafka_source_schema_is_bronze_without_ingest_time(spark) -> None:
    """Spark's Kafka source's columns (names and types) are Bronze's, but ingest_time."""
    from pipeline.schemas import spark_schema

    source = spark.readStream.format("kafka").option(
        "kafka.bootstrap.servers", "127.0.0.1:1").option("subscribe", "t").load().schema
    bronze = spark_schema(BRONZE_TICKS)
    assert [(f.name, f.dataType) for f in source.fields] == [
        (f.name, f.dataType) for f in bronze.fields if f.name != "ingest_time"]


def daily_bars(n: int) -> pd.DataFrame:
    start = datetime(2012, 1, 2, tzinfo=UTC)
    return pd.DataFrame({
        "ticker": "AAA", "window_start": [start + timedelta(days=i) for i in range(n)],
        "close": [10.0 + (i % 7) for i in range(n)], "volume": [100 + i for i in range(n)],
        "avg_price": [10.0 + (i % 5) for i in range(n)], "trade_count": 4,
    })


@pytest.mark.parametrize(("function", "table"), [
    ("indicators_1d", GOLD_INDICATORS_1D), ("indicators_1h", GOLD_INDICATORS_1H)])
def test_indicator_frames_fit_their_gold_tables(function: str, table) -> None:
    """The indicator functions return exactly their table's columns, castable to its types."""
    from pipeline import indicators

    frame = getattr(indicators, function)(daily_bars(60))
    assert list(frame.columns) == table.schema.names
    pa.Table.from_pandas(frame, preserve_index=False).cast(table.schema)


def test_anomaly_frames_fit_their_gold_table() -> None:
    """Anomaly flags (a volume spike) return exactly gold/anomalies' columns and types."""
    from pipeline.indicators import anomalies, indicators_1d

    bars = daily_bars(60)
    bars.loc[50, "volume"] = 1_000_000
    flags = anomalies(indicators_1d(bars))
    assert len(flags) >= 1 and list(flags.columns) == GOLD_ANOMALIES.schema.names
    pa.Table.from_pandas(flags, preserve_index=False).cast(GOLD_ANOMALIES.schema)


def dictionary_columns() -> dict[str, set[str]]:
    """Table path -> the backticked names in the first cell of its section's rows."""
    text = (ROOT / "docs" / "data-dictionary.md").read_text()
    found: dict[str, set[str]] = {}
    paths: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            paths = re.findall(r"`([a-z_]+/[a-z0-9_]+)`", line)
            for path in paths:
                found.setdefault(path, set())
        elif line.startswith("| `") and paths:
            first_cell = line.split("|")[1]
            for path in paths:
                found[path].update(re.findall(r"`([A-Za-z0-9_]+)`", first_cell))
    return found


def test_the_data_dictionary_lists_every_column_of_every_table() -> None:
    """docs/data-dictionary.md has a section per registered table naming exactly its columns."""
    documented = dictionary_columns()
    assert set(documented) == {t.relative_path for t in ALL_TABLES}
    for table in ALL_TABLES:
        assert documented[table.relative_path] == set(table.schema.names), table.name


def test_status_and_maintenance_see_the_bar_tables_a_lake_holds(tmp_path: Path) -> None:
    """A lake written with TICKLAKE_BAR_INTERVALS=15m,1h,4h,1d: its gold/bars_15m and
    bars_4h are registered beside the default tables; a stray directory is not a table."""
    for name in ("bars_15m", "bars_4h", "bars_1h", "bars_old"):
        (tmp_path / "gold" / name).mkdir(parents=True)
    tables = lake_tables(tmp_path)
    assert tables[:len(ALL_TABLES)] == ALL_TABLES
    assert [t.relative_path for t in tables[len(ALL_TABLES):]] == ["gold/bars_15m",
                                                                   "gold/bars_4h"]
    assert bar_table("15m").schema == bar_table("1m").schema


def test_every_reason_has_a_meaning_and_is_in_the_data_dictionary() -> None:
    """The reason enum, its meanings and docs/data-dictionary.md's list are the same closed
    set."""
    assert set(REASON_MEANINGS) == set(Reason)
    readme = (ROOT / "docs" / "data-dictionary.md").read_text()
    section = readme[readme.index("Quarantine reason codes"):]
    section = section.split("\n\n")[0]
    assert set(re.findall(r"`([a-z_0-9]+)`", section)) == {r.value for r in Reason}


def test_the_model_spec_builds_the_model_it_describes() -> None:
    """The registry's hyper-parameters and the Keras model come from the same ModelSpec."""
    from analytics.lstm import LSTM_SPEC, build_model

    model = build_model(7, 0)
    meta = LSTM_SPEC.metadata(20)
    assert model.layers[0].units == meta["units"] == LSTM_SPEC.units
    assert model.loss == meta["loss"]
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(meta["learning_rate"])
    assert meta["layers"] == f"LSTM({LSTM_SPEC.units}) -> Dense(1)" and meta["max_epochs"] == 20


# docs/architecture.md, "Floor plan": the packages each package may import
FLOOR_PLAN = {
    "config": set(),
    "storage": {"config"},
    "producer": {"config"},
    "pipeline": {"producer", "storage", "config"},
    "analytics": {"pipeline", "storage", "config"},
    "visualization": {"analytics", "pipeline", "storage", "config"},
}
PACKAGES = {*FLOOR_PLAN, "ticklake"}


def test_each_package_imports_only_the_floors_below_it() -> None:
    """Every ``import`` in the package code (also the ones inside functions) names a package
    its floor may use; ``ticklake`` is the top floor and imports anything."""
    import ast

    breaches = []
    for package, allowed in FLOOR_PLAN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in PACKAGES and top != package and top not in allowed:
                        breaches.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert breaches == []
