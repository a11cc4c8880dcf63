"""ticklake: a real-time market-data lakehouse (Kafka -> Spark -> Delta -> LSTM -> Streamlit)."""

__version__ = "0.1.0"
