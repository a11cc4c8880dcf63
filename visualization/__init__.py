"""Streamlit dashboard over the Delta tables (delta-rs; never starts Spark)."""
