"""Spark Structured Streaming: topic -> bronze -> silver -> gold (Delta tables)."""
