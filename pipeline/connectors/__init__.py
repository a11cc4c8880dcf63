"""Spark Python data sources for Kafka and Delta Lake (no JVM connectors needed)."""

from pipeline.connectors.delta_source import DeltaDataSource
from pipeline.connectors.kafka_source import KafkaDataSource

__all__ = ["DeltaDataSource", "KafkaDataSource"]
