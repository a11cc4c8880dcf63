"""The table registry: every Delta table of the lake, its path, schema and keys.

This is the one place that knows where a table lives. Paths are relative to the lake
directory (``Settings.lake_dir``). Schemas are Arrow schemas (what delta-rs writes); the Spark
schemas are derived from them in :mod:`pipeline.schemas`. All timestamps are UTC, microsecond
precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa

from config.location import is_object_store, lake_location

UTC_TS = pa.timestamp("us", tz="UTC")
VOLUME_SCALE = 8
"""Decimal places a volume may have (a satoshi is 1e-8 BTC)."""
VOLUME_DECIMAL = pa.decimal128(38, VOLUME_SCALE)
"""An exact volume: 30 integer digits, :data:`VOLUME_SCALE` decimal places."""
Fields = list[tuple[str, pa.DataType]]


def _schema(fields: Fields) -> pa.Schema:
    return pa.schema(fields)


@dataclass(frozen=True)
class Table:
    """A Delta table of the lake.

    Attributes:
        name: registry name, e.g. ``"silver.ticks"``.
        relative_path: path under the lake directory, e.g. ``"silver/ticks"``.
        schema: Arrow schema of the table.
        keys: columns that identify a row (MERGE keys); empty for append-only tables.
        change_data_feed: whether the table records a change data feed (needed by tables
            that a downstream stream reads).
    """

    name: str
    relative_path: str
    schema: pa.Schema
    keys: tuple[str, ...] = ()
    change_data_feed: bool = False

    def path(self, lake_dir: Path | str) -> Path:
        """Path of the table under ``lake_dir``: absolute for a local lake, an S3 path for an
        ``s3://`` lake (:func:`config.location.lake_location`)."""
        path = lake_location(lake_dir) / self.relative_path
        return path if is_object_store(path) else path.resolve()


BRONZE_TICKS = Table(
    "bronze.ticks",
    "bronze/ticks",
    _schema(
        [
            ("key", pa.binary()),
            ("value", pa.binary()),
            ("topic", pa.string()),
            ("partition", pa.int32()),
            ("offset", pa.int64()),
            ("timestamp", UTC_TS),
            ("timestampType", pa.int32()),
            ("ingest_time", UTC_TS),
        ]
    ),
    change_data_feed=True,
)

_KAFKA_POSITION: Fields = [
    ("topic", pa.string()),
    ("partition", pa.int32()),
    ("offset", pa.int64()),
    ("kafka_timestamp", UTC_TS),
    ("ingest_time", UTC_TS),
]

SILVER_TICKS = Table(
    "silver.ticks",
    "silver/ticks",
    _schema(
        [
            ("tick_id", pa.string()),
            ("ticker", pa.string()),
            ("event_time", UTC_TS),
            ("price", pa.float64()),
            ("volume", pa.int64()),
            ("source", pa.string()),
            ("seq", pa.int64()),
            ("schema_version", pa.int32()),
            *_KAFKA_POSITION,
            # tick message v2; a table made by a v1 release gets them added in place (rows
            # written before read null: readers take COALESCE(volume_decimal, volume))
            ("asset_class", pa.string()),
            ("currency", pa.string()),
            ("volume_decimal", VOLUME_DECIMAL),
        ]
    ),
    keys=("tick_id",),
    change_data_feed=True,
)
"""Valid ticks. ``volume`` is the tick's volume rounded half-to-even to whole units (what a v1
reader expects); ``volume_decimal`` is exact. ``schema_version`` is the message's (1 or 2);
a v1 tick's ``asset_class`` and ``currency`` are derived from its ticker."""

SILVER_QUARANTINE = Table(
    "silver.quarantine",
    "silver/quarantine",
    _schema(
        [
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("tick_id", pa.string()),
            ("ticker", pa.string()),
            ("raw_value", pa.binary()),
            *_KAFKA_POSITION,
            ("quarantined_at", UTC_TS),
        ]
    ),
)

SILVER_WATERMARKS = Table(
    "silver.watermarks",
    "silver/watermarks",
    _schema(
        [
            ("ticker", pa.string()),
            ("watermark", UTC_TS),
            ("updated_at", UTC_TS),
        ]
    ),
    keys=("ticker",),
)
"""Silver's state: the latest event time it accepted per ticker (one row per ticker)."""

BAR_INTERVAL_RULE = ("Nm (minutes, N = 1-59), Nh (hours, N = 1-23) or 1d, N dividing the hour or "
                     "the day (1m, 5m, 15m, 1h, 4h, 1d)")
"""What a bar interval name is, for error messages."""
_INTERVAL = re.compile(r"([1-9][0-9]?)([mh])|(1d)")
DAY_S = 86_400
"""Length of a ``1d`` bar (seconds); shorter bars are intraday."""
REQUIRED_BAR_INTERVALS = ("1h", "1d")
"""Intervals Gold always keeps: ``gold/indicators_1h`` and ``gold/indicators_1d`` read them."""
DEFAULT_BAR_INTERVALS = ("1m", "5m", "1h", "1d")
"""``TICKLAKE_BAR_INTERVALS`` when unset."""


def bar_interval_seconds(interval: str) -> int:
    """Length of a bar interval in seconds (``"5m"`` -> 300, ``"1d"`` -> 86,400).

    Raises:
        ValueError: ``interval`` is not :data:`BAR_INTERVAL_RULE` (the message names it).
    """
    match = _INTERVAL.fullmatch(interval)
    if match is None:
        raise ValueError(f"bar interval {interval!r} is not {BAR_INTERVAL_RULE}")
    if match.group(3):
        return DAY_S
    n, unit = int(match.group(1)), match.group(2)
    if (unit == "m" and (n > 59 or 60 % n)) or (unit == "h" and (n > 23 or 24 % n)):
        raise ValueError(f"bar interval {interval!r} is not {BAR_INTERVAL_RULE}")
    return n * (60 if unit == "m" else 3600)


_BAR_STATE: Fields = [
    ("open_time", UTC_TS), ("open_seq", pa.int64()), ("open_tick_id", pa.string()),
    ("close_time", UTC_TS), ("close_seq", pa.int64()), ("close_tick_id", pa.string()),
    ("notional", pa.float64()), ("price_sum", pa.float64()),
]
"""What a bar keeps so a later micro-batch's ticks merge into it without re-reading its ticks:
the (event time, seq, tick_id) of its open and close ticks, sum of price x volume, sum of
prices."""


def bar_interval_name(seconds: int) -> str:
    """The interval name of bars ``seconds`` long (3,600 -> ``"1h"``), the inverse of
    :func:`bar_interval_seconds`.

    Raises:
        ValueError: no bar interval is ``seconds`` long (:data:`BAR_INTERVAL_RULE`).
    """
    name = ("1d" if seconds == DAY_S else f"{seconds // 3600}h" if seconds % 3600 == 0
            else f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s")
    if bar_interval_seconds(name) != seconds:  # e.g. 90 min -> "90m", refused above
        raise ValueError(f"no bar interval is {seconds} s long")
    return name


@cache
def bar_table(interval: str) -> Table:
    """The Gold bar table of ``interval`` (``gold/bars_<interval>``); windows aligned on the
    UTC epoch, except a ``1d`` bar: the ticker's trade date
    (:func:`config.instruments.trading_date`) from 00:00 UTC of that date. ``volume_decimal``
    is the bar's exact volume (Σ of its ticks' exact volumes; null on a bar written by a v1
    release until a tick merges into it), ``volume`` the Σ of its ticks' whole-unit volumes
    (Silver's ``volume``), equal to it when every tick's volume is whole; ``vwap`` uses the
    exact volume.

    Raises:
        ValueError: ``interval`` is not a bar interval (:func:`bar_interval_seconds`).
    """
    bar_interval_seconds(interval)
    return Table(
        f"gold.bars_{interval}",
        f"gold/bars_{interval}",
        _schema(
            [
                ("ticker", pa.string()),
                ("window_start", UTC_TS),
                ("window_end", UTC_TS),
                ("open", pa.float64()),
                ("high", pa.float64()),
                ("low", pa.float64()),
                ("close", pa.float64()),
                ("volume", pa.int64()),
                ("vwap", pa.float64()),
                ("trade_count", pa.int64()),
                ("avg_price", pa.float64()),
                ("updated_at", UTC_TS),
                *_BAR_STATE,
                ("volume_decimal", VOLUME_DECIMAL),
            ]
        ),
        keys=("ticker", "window_start"),
    )


def bar_tables(intervals: tuple[str, ...] = DEFAULT_BAR_INTERVALS) -> dict[str, Table]:
    """Interval -> Gold bar table, shortest first (``Settings.bar_intervals``)."""
    return {i: bar_table(i) for i in sorted(intervals, key=bar_interval_seconds)}


GOLD_BARS_1M = bar_table("1m")
GOLD_BARS_1H = bar_table("1h")
GOLD_BARS_1D = bar_table("1d")
GOLD_BARS = bar_tables()
"""The bar tables of the default intervals."""

_F64 = pa.float64()
_INDICATOR_KEYS: Fields = [("ticker", pa.string()), ("window_start", UTC_TS), ("close", _F64),
                           ("volume", pa.int64())]
GOLD_INDICATORS_1D = Table(
    "gold.indicators_1d",
    "gold/indicators_1d",
    _schema(
        _INDICATOR_KEYS
        + [(name, _F64) for name in (
            "simple_return", "log_return", "sma_7", "sma_14", "sma_30", "ema_12", "ema_26",
            "macd", "macd_signal", "macd_hist", "bb_middle", "bb_upper", "bb_lower", "rsi_14",
            "volatility_14", "volatility_30", "vol_moving_avg", "adj_close_rolling_med")]
        + [("bar_index", pa.int64()), ("macd_fast", _F64), ("rsi_avg_gain", _F64),
           ("rsi_avg_loss", _F64)]
    ),
    keys=("ticker", "window_start"),
)

GOLD_INDICATORS_1H = Table(
    "gold.indicators_1h",
    "gold/indicators_1h",
    _schema(
        [("ticker", pa.string()), ("window_start", UTC_TS), ("avg_price", _F64),
         ("total_volume", pa.int64()), ("trades", pa.int64()), ("return_1h", _F64),
         ("ma_3", _F64), ("vol_3", _F64)]
    ),
    keys=("ticker", "window_start"),
)

GOLD_ANOMALIES = Table(
    "gold.anomalies",
    "gold/anomalies",
    _schema(
        [("ticker", pa.string()), ("window_start", UTC_TS), ("metric", pa.string()),
         ("value", _F64), ("window_mean", _F64), ("window_std", _F64), ("z_score", _F64)]
    ),
    keys=("ticker", "window_start", "metric"),
)

GOLD_DAILY_METRICS = Table(
    "gold.daily_metrics",
    "gold/daily_metrics",
    _schema(
        [
            ("trading_date", pa.date32()),
            ("ticker", pa.string()),
            ("avg_price", pa.float64()),
            ("total_volume", pa.int64()),
            ("trades", pa.int64()),
            ("updated_at", UTC_TS),
            ("price_sum", pa.float64()),
        ]
    ),
    keys=("ticker", "trading_date"),
)

GOLD_PREDICTIONS = Table(
    "gold.predictions",
    "gold/predictions",
    _schema(
        [
            ("ticker", pa.string()),
            ("as_of", pa.date32()),
            ("target_date", pa.date32()),
            ("predicted_avg_price", pa.float64()),
            ("lower_80", pa.float64()),
            ("upper_80", pa.float64()),
            ("naive_avg_price", pa.float64()),
            ("model_version", pa.string()),
            ("created_at", UTC_TS),
            # added with forecast horizons (null in rows of older lakes: 1 day, the LSTM)
            ("horizon", pa.int32()),
            ("model", pa.string()),
        ]
    ),
    keys=("ticker", "as_of", "horizon", "model_version"),
)

ALL_TABLES: tuple[Table, ...] = (
    BRONZE_TICKS,
    SILVER_TICKS,
    SILVER_QUARANTINE,
    SILVER_WATERMARKS,
    *GOLD_BARS.values(),
    GOLD_DAILY_METRICS,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    GOLD_ANOMALIES,
    GOLD_PREDICTIONS,
)



def lake_tables(lake_dir: Path) -> tuple[Table, ...]:
    """:data:`ALL_TABLES` and the bar tables of other intervals that ``lake_dir`` holds (a
    lake written with a non-default ``TICKLAKE_BAR_INTERVALS``), for status and maintenance."""
    extra = []
    for path in sorted((lake_location(lake_dir) / "gold").glob("bars_*")):
        interval = path.name.removeprefix("bars_")
        try:
            table = bar_table(interval)
        except ValueError:
            continue
        if table not in ALL_TABLES:
            extra.append(table)
    return (*ALL_TABLES, *extra)


MODELS_DIR = "models"
"""Model registry directory under the lake: ``models/<ticker>/<version>/``."""

