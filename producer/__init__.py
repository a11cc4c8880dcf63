"""Ticks from a source -> Kafka topic (key = ticker)."""
