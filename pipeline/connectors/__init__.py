"""Spark Python data sources for Kafka and Delta Lake (no JVM connectors needed).

The data sources are imported on first use (PEP 562), so that importing the pure-Python helpers
(``pipeline.connectors.kafka_offsets``, e.g. for the dashboard's lag table) does not import
PySpark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.connectors.delta_source import DeltaDataSource
    from pipeline.connectors.kafka_source import KafkaDataSource

__all__ = ["DeltaDataSource", "KafkaDataSource"]


def __getattr__(name: str) -> Any:
    if name == "DeltaDataSource":
        from pipeline.connectors.delta_source import DeltaDataSource

        return DeltaDataSource
    if name == "KafkaDataSource":
        from pipeline.connectors.kafka_source import KafkaDataSource

        return KafkaDataSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
