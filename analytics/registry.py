"""The model registry: ``<lake>/models/<ticker>/<version>/`` and a champion pointer per ticker.

Layout of one version directory (nothing is ever overwritten; a version name is the UTC time
of its training, ``YYYYMMDDTHHMMSSffffffZ``), one sub-directory per forecast horizon ``h``:

- ``h<h>/model.keras``: the horizon's LSTM, loaded with ``safe_mode=True`` (no arbitrary code,
  such as ``Lambda`` layers, is deserialised).
- ``h<h>/scaler.json``: :class:`analytics.features.Scaler` as JSON (no pickle anywhere).
- ``h<h>/linear.json``: the linear baseline's coefficients.
- ``h<h>/backtest.png`` and ``h<h>/backtest.csv``: the walk-forward test days.
- ``metadata.json`` (``"format": 2``): features, window, hyper-parameters, seed, the Gold table
  and its Delta version, a fingerprint of the ticker's rows, the git commit, and per horizon
  the walk-forward metrics of the LSTM and every baseline (RMSE, skill, interval coverage,
  Diebold-Mariano test vs naive), the conformal calibration state, the champion model with the
  reason, and the final models' forecast from the newest window.

In an S3 lake (:mod:`config.location`) a version is written to a local staging folder and
uploaded file by file when its ``metadata.json`` is written (which marks it complete), and a
model file is downloaded to a temporary file to load: Keras reads and writes local files only.

``models/<ticker>/champion.json`` names the version that serves forecasts and, per horizon,
its champion model (:mod:`analytics.champion`). A newly trained version always becomes the
serving one: it was backtested on the newest data, and within it the champion is chosen among
models scored on the same days. Skills of two versions are measured on different days, so
they are not compared.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from analytics.conformal import ConformalState
from analytics.features import Scaler, make_windows
from analytics.lstm import FittedLSTM, compiled_inference
from config.errors import ModelError
from config.location import is_object_store, lake_location, write_atomically
from config.runtime import import_tensorflow
from config.tables import MODELS_DIR

if TYPE_CHECKING:  # scikit-learn takes a second to import: only where a model is loaded
    from analytics.baselines import LinearBaseline

CHAMPION_FILE = "champion.json"
FORMAT = 2
"""``metadata.json`` format: 2 since forecasts have horizons and calibrated intervals."""


def horizon_dir(version_dir: Path, horizon: int) -> Path:
    """The sub-directory of one horizon's files in a version directory."""
    return version_dir / f"h{horizon}"


def code_version() -> dict[str, Any]:
    """The git commit of this checkout and whether it had uncommitted changes.

    Returns ``{"commit": sha or None, "dirty": bool or None}`` (None outside a git checkout or
    without git).
    """
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip() != ""
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def data_fingerprint(series: pd.DataFrame) -> str:
    """SHA-256 of a ticker's (trading_date, avg_price, total_volume) rows in date order."""
    ordered = series.sort_values("trading_date")
    digest = hashlib.sha256()
    for column in ("trading_date", "avg_price", "total_volume"):
        digest.update(ordered[column].astype(str).str.cat(sep=",").encode())
    return digest.hexdigest()


@dataclass
class HorizonModel:
    """One horizon of a registered version: the fitted models and the calibration.

    Attributes:
        horizon: trading days ahead.
        lstm: the final LSTM (with its scaler); None when the version was loaded with
            ``lstm="champion"`` and the LSTM does not serve this horizon.
        linear: the final linear baseline.
        champion: the model that serves this horizon (a name in
            :data:`analytics.backtest.MODELS`).
        conformal: per model the calibration state after the backtest.
    """

    horizon: int
    lstm: FittedLSTM | None
    linear: LinearBaseline
    champion: str
    conformal: dict[str, ConformalState]


@dataclass
class LoadedModel:
    """A registered version ready to forecast."""

    ticker: str
    version: str
    metadata: dict[str, Any]
    horizons: dict[int, HorizonModel]

    @property
    def window_days(self) -> int:
        return int(self.metadata["window_days"])

    def forecast(self, avg_price: np.ndarray, total_volume: np.ndarray, horizon: int = 1,
                 model: str | None = None) -> dict[str, Any]:
        """Forecast ``horizon`` trading days after the last of ``window_days`` days.

        Args:
            avg_price: shape (>= window_days,), > 0, in date order (ticker's price unit); the
                last ``window_days`` are used.
            total_volume: same shape, >= 0 shares.
            horizon: one of the version's horizons.
            model: a model name; default the horizon's champion.

        Returns:
            ``{"horizon", "model", "predicted_avg_price", "lower_80", "upper_80",
            "naive_avg_price"}`` (price unit; the interval is the model's conformal 80%
            interval, :mod:`analytics.conformal`).

        Raises:
            ValueError: fewer than ``window_days`` days, a price <= 0, an unknown horizon or
                model, or the LSTM when it was not loaded (:meth:`Registry.load`).
        """
        if horizon not in self.horizons:
            raise ValueError(f"{self.ticker} version {self.version} has horizons "
                             f"{sorted(self.horizons)}, not {horizon}")
        entry = self.horizons[horizon]
        name = model or entry.champion
        if name not in entry.conformal:
            raise ValueError(f"unknown model {name!r}; one of {sorted(entry.conformal)}")
        if name == "lstm" and entry.lstm is None:
            raise ValueError(f"{self.ticker} version {self.version} was loaded without the "
                             f"LSTM of horizon {horizon}")
        price = np.asarray(avg_price, dtype=np.float64)[-self.window_days:]
        volume = np.asarray(total_volume, dtype=np.float64)[-self.window_days:]
        if len(price) < self.window_days:
            raise ValueError(f"{self.ticker}: need {self.window_days} days, got {len(price)}")
        X = make_windows(price, volume, self.window_days, include_last=True, horizon=1).X[-1:]
        from analytics.backtest import forecast_scale, relative_forecast

        rel = float(relative_forecast(name, X, entry.lstm, entry.linear)[0])
        half = float(entry.conformal[name].half_width(forecast_scale(X, horizon))[0])
        last = float(price[-1])
        return {
            "horizon": horizon,
            "model": name,
            "predicted_avg_price": last * (1 + rel),
            "lower_80": last * (1 + rel - half),
            "upper_80": last * (1 + rel + half),
            "naive_avg_price": last,
        }


class Registry:
    """The versions and champions under ``<lake_dir>/models``."""

    def __init__(self, lake_dir: Path) -> None:
        self.root = lake_location(lake_dir) / MODELS_DIR
        self._staged: dict[tuple[str, str], Path] = {}
        """(ticker, version) -> the local folder a version of an S3 lake is written to."""

    def tickers(self) -> list[str]:
        """Tickers with at least one version."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, ticker: str) -> list[str]:
        """Complete versions (with metadata.json) of ``ticker``, oldest first."""
        d = self.root / ticker
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "metadata.json").exists())

    def version_dir(self, ticker: str, version: str) -> Path:
        return self.root / ticker / version

    def metadata(self, ticker: str, version: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.version_dir(ticker, version) / "metadata.json").read_text())
        return data

    def latest(self, ticker: str) -> dict[str, Any] | None:
        """Metadata of the newest version, or None."""
        versions = self.versions(ticker)
        return self.metadata(ticker, versions[-1]) if versions else None

    def champion(self, ticker: str) -> dict[str, Any] | None:
        """``{"version", "promoted_at", "reason", "horizons": {"<h>": {"model", "reason"}}}``
        of the serving version, or None (none yet, or a pointer of an older format)."""
        path = self.root / ticker / CHAMPION_FILE
        if not path.exists():
            return None
        pointer: dict[str, Any] = json.loads(path.read_text())
        return pointer if "horizons" in pointer else None

    def champions(self) -> dict[str, dict[str, Any]]:
        return {t: c for t in self.tickers() if (c := self.champion(t)) is not None}

    def new_version_dir(self, ticker: str, now: datetime) -> tuple[str, Path]:
        """A fresh, empty version directory named after ``now`` (UTC) to write the version's
        files into: the version's own directory in a local lake, a local staging folder in an
        S3 lake (uploaded by :meth:`write_metadata`)."""
        version = now.strftime("%Y%m%dT%H%M%S%fZ")
        path = self.version_dir(ticker, version)
        if is_object_store(path):
            if (path / "metadata.json").exists():
                raise FileExistsError(str(path))
            staged = Path(tempfile.mkdtemp(prefix=f"ticklake-model-{ticker}-{version}-"))
            self._staged[(ticker, version)] = staged
            return version, staged
        path.mkdir(parents=True, exist_ok=False)
        return version, path

    def write_metadata(self, ticker: str, version: str, metadata: dict[str, Any]) -> None:
        """Write a version's metadata.json atomically (a version counts as complete, see
        :meth:`versions`, only once this file exists); in an S3 lake, the version's staged
        files are uploaded first."""
        target = self.version_dir(ticker, version)
        staged = self._staged.pop((ticker, version), None)
        if staged is not None:
            try:
                for file in sorted(p for p in staged.rglob("*") if p.is_file()):
                    (target / file.relative_to(staged).as_posix()).write_bytes(file.read_bytes())
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        _write_json(target / "metadata.json", metadata)

    def consider(self, ticker: str, version: str, now: datetime) -> tuple[bool, str]:
        """Make ``version`` the serving one (see the module docstring) and record why.

        The champion pointer holds, per horizon, the champion model and the reason from the
        version's metadata; it is replaced atomically (write, then rename). The decision is
        also written into the version's metadata (``promotion``).

        Returns:
            ``(promoted, reason)``; False for a version of an older format.
        """
        meta = self.metadata(ticker, version)
        if meta.get("format") != FORMAT:
            return False, f"version format {meta.get('format', 1)} cannot serve; retrain"
        previous = self.champion(ticker)
        champions = {h: {"model": entry["champion"]["model"],
                         "reason": entry["champion"]["reason"]}
                     for h, entry in meta["horizons"].items()}
        reason = "newest trained version" + (
            f" (replaces {previous['version']})" if previous else "") + ": " + "; ".join(
            f"h={h}: {c['model']}" for h, c in champions.items())
        meta["promotion"] = {"promoted": True, "reason": reason, "decided_at": now.isoformat()}
        self.write_metadata(ticker, version, meta)
        _write_json(self.root / ticker / CHAMPION_FILE, {
            "version": version, "promoted_at": now.isoformat(), "reason": reason,
            "horizons": champions,
        })
        return True, reason

    def load(self, ticker: str, version: str,
             lstm: Literal["all", "champion"] = "all") -> LoadedModel:
        """Load a version in Keras safe mode.

        Args:
            ticker, version: the version to load.
            lstm: ``"all"`` loads every horizon's LSTM; ``"champion"`` only the horizons the
                LSTM serves (TensorFlow is not imported when it serves none).

        Raises:
            ModelError: the version does not exist or is of an older format, its files cannot
                be read, a model file would need unsafe deserialisation (e.g. a Lambda layer),
                or the scaler or linear coefficients hold non-finite values.
        """
        from analytics.baselines import LinearBaseline

        d = self.version_dir(ticker, version)
        if not (d / "metadata.json").exists():
            raise ModelError(f"no model version {ticker}/{version} under {self.root}")
        meta = self.metadata(ticker, version)
        if meta.get("format") != FORMAT:
            raise ModelError(f"model version {ticker}/{version} has format "
                             f"{meta.get('format', 1)}, this ticklake reads {FORMAT}: run "
                             "ticklake train")
        horizons = {}
        try:
            for key, entry in meta["horizons"].items():
                h, folder = int(key), horizon_dir(d, int(key))
                scaler = Scaler.load(folder / "scaler.json")
                wanted = lstm == "all" or entry["champion"]["model"] == "lstm"
                horizons[h] = HorizonModel(
                    h, _load_lstm(folder, scaler) if wanted else None,
                    LinearBaseline.load(folder / "linear.json", scaler),
                    entry["champion"]["model"],
                    {m: ConformalState(float(c["alpha"]), float(c["quantile"]), int(c["scores"]))
                     for m, c in entry["conformal"].items()})
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"model version {ticker}/{version} cannot be loaded: {err}") from err
        return LoadedModel(ticker, version, meta, horizons)


def _load_lstm(folder: Path, scaler: Scaler) -> FittedLSTM:
    import_tensorflow()
    import keras

    source = folder / "model.keras"
    if not is_object_store(source):
        model = keras.saving.load_model(source, compile=False, safe_mode=True)
    else:  # Keras opens local files only
        with tempfile.TemporaryDirectory(prefix="ticklake-model-") as scratch:
            local = Path(scratch) / "model.keras"
            local.write_bytes(source.read_bytes())
            model = keras.saving.load_model(local, compile=False, safe_mode=True)
    return FittedLSTM(model, scaler, 0, compiled_inference(model))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(data, indent=2, default=str))
