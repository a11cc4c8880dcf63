"""The per-ticker LSTM: its specification, training on one fold, and its forecasts.

Architecture and hyper-parameters live in one :class:`ModelSpec`, which builds the Keras model
and is written to each registry version's metadata, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analytics.features import FEATURES, Scaler, Windows
from analytics.folds import Fold
from config.runtime import import_tensorflow

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(epoch_done, epochs)`` after each training epoch."""


@dataclass(frozen=True)
class ModelSpec:
    """The LSTM's architecture and training hyper-parameters.

    Attributes:
        units: LSTM units (one layer), followed by Dense(1).
        learning_rate: Adam's learning rate.
        loss: Keras loss name.
        batch_size: windows per gradient step.
        early_stopping_patience: epochs without a better validation loss before stopping
            (best weights restored).
    """

    units: int = 32
    learning_rate: float = 1e-3
    loss: str = "mse"
    batch_size: int = 64
    early_stopping_patience: int = 5

    def metadata(self, max_epochs: int) -> dict[str, Any]:
        """The registry's ``hyper_parameters``: this spec plus a readable architecture."""
        return {"layers": f"LSTM({self.units}) -> Dense(1)",
                "optimizer": f"Adam({self.learning_rate:g})", **asdict(self),
                "max_epochs": max_epochs}


LSTM_SPEC = ModelSpec()
"""The specification every ticker's LSTM is trained with."""
STEPS_PER_EXECUTION = 32
"""Training steps Keras runs per call into its traced graph (``compile(steps_per_execution)``):
the same gradient steps on the same batches in the same order as one per call, with fewer
Python round trips (docs/architecture.md, "Measured facts")."""


@dataclass
class FittedLSTM:
    """An LSTM trained on one fold, with its scaler.

    Attributes:
        model: the Keras model (input (window_days, 2) scaled, output scaled relative change).
        scaler: fitted on the fold's ``fit`` windows only.
        epochs_run: epochs actually trained (early stopping may end sooner).
        infer: the model's forward pass compiled by :func:`compiled_inference` (serving);
            None calls the Keras model eagerly.
    """

    model: Any
    scaler: Scaler
    epochs_run: int
    infer: Callable[[np.ndarray], np.ndarray] | None = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Relative forecasts ``next / last - 1``, shape (n,), float64."""
        if not len(X):
            return np.zeros(0)
        scaled = self.scaler.transform(X)
        out = self.infer(scaled) if self.infer is not None else self.model(scaled,
                                                                           training=False)
        return np.asarray(out, dtype=np.float64)[:, 0] * self.scaler.target_std


def compiled_inference(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``model(x, training=False)`` traced once into a TensorFlow graph, for serving.

    Input shape (n, window_days, features), cast to float32 (the layers' dtype, so the result
    equals the eager call's); output shape (n, 1). A traced graph skips Keras' per-call eager
    work (docs/benchmarks.md, "Prediction API"). Traced here, once, so the first request does
    not pay it and concurrent requests do not trace twice.
    """
    tf = import_tensorflow()

    def forward(x: Any) -> Any:
        return model(x, training=False)

    shape = (None, *model.input_shape[1:])
    graph = tf.function(forward, input_signature=[tf.TensorSpec(shape, tf.float32)],
                        autograph=False)

    def infer(x: np.ndarray) -> np.ndarray:
        return np.asarray(graph(np.asarray(x, dtype=np.float32)))

    infer(np.zeros((1, *model.input_shape[1:])))
    return infer


def build_model(window_days: int, seed: int, spec: ModelSpec = LSTM_SPEC) -> Any:
    """LSTM(``spec.units``) -> Dense(1) on inputs of shape (window_days, 2); Adam, ``spec.loss``.
    Seeded with ``keras.utils.set_random_seed(seed)``."""
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((window_days, len(FEATURES))),
        keras.layers.LSTM(spec.units),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate), loss=spec.loss,
                  steps_per_execution=STEPS_PER_EXECUTION)
    return model


_TRACED: dict[tuple[int, ModelSpec], Any] = {}
"""Per process: the compiled model each (window_days, spec) is trained on. Keras traces a
model's training and validation steps into TensorFlow graphs on its first ``fit``; training
every fold and horizon on one model pays that once per process instead of once per fit
(docs/architecture.md, "Measured facts")."""


def _traced_model(window_days: int, seed: int, spec: ModelSpec) -> Any:
    """This process's compiled model for (window_days, spec), built on first use."""
    key = (window_days, spec)
    if key not in _TRACED:
        _TRACED[key] = build_model(window_days, seed, spec)
    return _TRACED[key]


def _reset_optimizer(model: Any) -> None:
    """Adam's state as a new optimizer has it: step counter and moment estimates at zero (its
    learning rate kept)."""
    for variable in model.optimizer.variables:
        if variable.name != "learning_rate":
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


def batches(X: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
            ) -> Any:
    """A ``tf.data.Dataset`` of (X, y) batches of ``batch_size`` as float32 (the layers' dtype),
    reshuffled every epoch with ``shuffle_seed`` (None: in order).

    X has shape (n, window_days, features), y shape (n,). Keras' adapter for NumPy input makes
    a costlier iterator every epoch, for training and for validation, than this plain dataset
    does (docs/architecture.md, "Measured facts")."""
    tf = import_tensorflow()
    data = tf.data.Dataset.from_tensor_slices((np.asarray(X, dtype=np.float32),
                                               np.asarray(y, dtype=np.float32)))
    if shuffle_seed is not None:
        data = data.shuffle(len(X), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size)


def fit_lstm(
    w: Windows, fold: Fold, epochs: int, seed: int, progress: ProgressFn | None = None,
    spec: ModelSpec = LSTM_SPEC,
) -> FittedLSTM:
    """Train the LSTM on ``fold.fit``, early-stopping on ``fold.validation``.

    Early stopping: patience ``spec.early_stopping_patience`` on validation loss, best weights
    restored. Seeded with ``keras.utils.set_random_seed(seed)``: on the same data, one thread,
    the same metrics. The weights start as :func:`build_model` draws them and the optimizer
    starts empty, as on a new model; the training itself runs on a model this process has
    traced already (:data:`_TRACED`), and the returned model is a copy of its result.
    """
    import_tensorflow()
    import keras

    fit, val = list(fold.fit), list(fold.validation)
    scaler = Scaler.fit(w.X[fit], w.y[fit])
    traced = _traced_model(w.X.shape[1], seed, spec)
    model = build_model(w.X.shape[1], seed, spec)  # the seeded initial weights, and the result
    traced.set_weights(model.get_weights())
    _reset_optimizer(traced)

    class Progress(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no types
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs_run = epoch + 1
            if progress:
                progress(epoch + 1, epochs)

    counter = Progress()
    traced.fit(
        batches(scaler.transform(w.X[fit]), w.y[fit] / scaler.target_std, spec.batch_size,
                shuffle_seed=seed),
        validation_data=batches(scaler.transform(w.X[val]), w.y[val] / scaler.target_std,
                                spec.batch_size),
        epochs=epochs, shuffle=False, verbose=0,  # the dataset reshuffles itself
        callbacks=[keras.callbacks.EarlyStopping(patience=spec.early_stopping_patience,
                                                 restore_best_weights=True),
                   counter],
    )
    model.set_weights(traced.get_weights())
    return FittedLSTM(model, scaler, getattr(counter, "epochs_run", 0))
