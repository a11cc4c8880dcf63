"""ticklake: a real-time market-data lakehouse (Kafka -> Spark -> Delta -> LSTM -> Streamlit)."""

__version__ = "0.2.0"
