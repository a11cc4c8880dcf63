"""Gold -> per-ticker LSTM models -> predictions (Delta) ; the model registry."""
