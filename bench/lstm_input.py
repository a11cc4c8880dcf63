"""Benchmark: LSTM fits fed NumPy arrays (Keras' adapter) and a ``tf.data`` dataset
(:func:`analytics.lstm.batches`, what ``fit_lstm`` feeds).

The replay's real daily bars of ``--ticker`` (bokeh-sampledata; close as the price), windows
as training makes them at horizon 1, the first walk-forward fold of the quick backtest
(``ticklake up``'s 2 folds). Each round fits ``--epochs`` epochs (no early stopping, so both
run the same epochs) with validation each epoch, once per input, alternating, on one traced
model reset to the same initial weights; one TensorFlow thread. Prints each fit's seconds, the
medians and the ratio (dataset / NumPy; below 1 is faster).

    .venv/bin/python bench/lstm_input.py [--ticker IBM] [--rounds 3] [--epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from analytics.features import Scaler, make_windows
from analytics.lstm import LSTM_SPEC, batches, build_model
from analytics.parallel import init_tensorflow
from analytics.train import training_plan
from config.settings import Settings
from producer.sources.replay import load_bokeh_bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticker", default="IBM", help="a bokeh-sampledata ticker")
    parser.add_argument("--rounds", type=int, default=3, help="fits per input (>= 1)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per fit (>= 1)")
    args = parser.parse_args()
    if args.rounds < 1 or args.epochs < 1:
        parser.error(f"--rounds {args.rounds}, --epochs {args.epochs}: each must be >= 1")
    init_tensorflow(1)
    settings = Settings(backtest_folds=2)
    bars = load_bokeh_bars([args.ticker])
    w = make_windows(bars["close"].to_numpy(), bars["volume"].to_numpy(), settings.window_days)
    fold = training_plan(len(w.y), settings)[0][0]
    fit, val = list(fold.fit), list(fold.validation)
    scaler = Scaler.fit(w.X[fit], w.y[fit])
    X, y = scaler.transform(w.X[fit]), w.y[fit] / scaler.target_std
    Xv, yv = scaler.transform(w.X[val]), w.y[val] / scaler.target_std
    print(f"{args.ticker}: {len(fit)} fit and {len(val)} validation windows of "
          f"{settings.window_days} days; {args.epochs} epochs per fit")
    model = build_model(w.X.shape[1], settings.seed)
    initial = model.get_weights()
    inputs: dict[str, Callable[[], dict[str, Any]]] = {
        "NumPy arrays (Keras' adapter)": lambda: {
            "x": X, "y": y, "validation_data": (Xv, yv), "batch_size": LSTM_SPEC.batch_size,
            "shuffle": True},
        "tf.data dataset (batches)": lambda: {
            "x": batches(X, y, LSTM_SPEC.batch_size, shuffle_seed=settings.seed),
            "validation_data": batches(Xv, yv, LSTM_SPEC.batch_size), "shuffle": False},
    }
    model.fit(**inputs["NumPy arrays (Keras' adapter)"](), epochs=1, verbose=0)  # traces
    seconds: dict[str, list[float]] = {name: [] for name in inputs}
    for round_ in range(args.rounds):
        for name, make in inputs.items():
            model.set_weights(initial)
            started = time.perf_counter()
            model.fit(**make(), epochs=args.epochs, verbose=0)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_ + 1}: {name}: {seconds[name][-1]:.3f} s")
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    for name, median in medians.items():
        print(f"median {name}: {median:.3f} s")
    reference, dataset = medians.values()
    print(f"ratio dataset / NumPy: {dataset / reference:.2f}")


if __name__ == "__main__":
    main()
