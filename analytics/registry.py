"""The model registry: ``<lake>/models/<ticker>/<version>/`` and a champion pointer per ticker.

Layout of one version directory (nothing is ever overwritten; a version name is the UTC time
of its training, ``YYYYMMDDTHHMMSSffffffZ``):

- ``model.keras``: the Keras model, loaded with ``safe_mode=True`` (no arbitrary code, such as
  ``Lambda`` layers, is deserialised).
- ``scaler.json``: :class:`analytics.features.Scaler` as JSON (no pickle anywhere).
- ``metadata.json``: features, window, hyper-parameters, seed, the Gold table and its Delta
  version, a fingerprint of the ticker's rows, the git commit of the code, the walk-forward
  metrics of the LSTM and every baseline, interval quantiles and coverage, created time.
- ``backtest.png``: actual vs LSTM vs naive with the 80% interval over the backtest folds.
- ``backtest.csv``: the per-day numbers behind the plot.

``models/<ticker>/champion.json`` names the version that serves forecasts. The rule
(:func:`promotion_decision`): a new version becomes champion only if its validation skill
(walk-forward skill vs naive, pooled over the folds) is > 0 and better than the current
champion's. Otherwise the version is kept, not promoted, and the reason is recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.features import Scaler, make_windows
from analytics.lstm import FittedLSTM
from config.errors import ModelError
from config.tables import MODELS_DIR

CHAMPION_FILE = "champion.json"


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


def promotion_decision(skill: float | None, champion: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether a version with walk-forward ``skill`` replaces ``champion``, and why.

    Args:
        skill: ``1 - RMSE_lstm / RMSE_naive`` over the backtest folds (None if unknown).
        champion: the current ``champion.json`` content, or None.

    Returns:
        ``(promote, reason)``: promote only if ``skill`` is finite, > 0 and greater than the
        champion's skill.
    """
    if skill is None or not math.isfinite(skill):
        return False, "no walk-forward skill could be computed"
    if skill <= 0:
        return False, (f"walk-forward skill {skill:+.4f} <= 0: the LSTM does not beat the "
                       "naive forecast")
    if champion is not None and skill <= float(champion["skill"]):
        return False, (f"walk-forward skill {skill:+.4f} is not better than champion "
                       f"{champion['version']} ({float(champion['skill']):+.4f})")
    if champion is None:
        return True, f"walk-forward skill {skill:+.4f} > 0: first champion"
    return True, (f"walk-forward skill {skill:+.4f} beats champion {champion['version']} "
                  f"({float(champion['skill']):+.4f})")


@dataclass
class LoadedModel:
    """A registered version ready to forecast."""

    ticker: str
    version: str
    model: Any
    scaler: Scaler
    metadata: dict[str, Any]

    @property
    def window_days(self) -> int:
        return int(self.metadata["window_days"])

    def forecast(self, avg_price: np.ndarray, total_volume: np.ndarray) -> dict[str, float]:
        """Next-day forecast from the last ``window_days`` days.

        Args:
            avg_price: shape (>= window_days,), > 0, in date order (ticker's price unit).
            total_volume: same shape, >= 0 shares.

        Returns:
            ``{"predicted_avg_price", "lower_80", "upper_80", "naive_avg_price"}``.

        Raises:
            ValueError: fewer than ``window_days`` days, or a price <= 0.
        """
        price = np.asarray(avg_price, dtype=np.float64)[-self.window_days:]
        volume = np.asarray(total_volume, dtype=np.float64)[-self.window_days:]
        if len(price) < self.window_days:
            raise ValueError(f"{self.ticker}: need {self.window_days} days, got {len(price)}")
        w = make_windows(price, volume, self.window_days, include_last=True)
        q_lo, q_hi = self.metadata["interval"]["residual_quantiles"]
        fitted = FittedLSTM(self.model, self.scaler, (float(q_lo), float(q_hi)), 0)
        rel = fitted.predict(w.X[-1:])
        lower, upper = fitted.interval(rel)
        last = float(price[-1])
        return {
            "predicted_avg_price": last * (1 + float(rel[0])),
            "lower_80": last * (1 + float(lower[0])),
            "upper_80": last * (1 + float(upper[0])),
            "naive_avg_price": last,
        }


class Registry:
    """The versions and champions under ``<lake_dir>/models``."""

    def __init__(self, lake_dir: Path) -> None:
        self.root = Path(lake_dir) / MODELS_DIR

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
        """``{"version", "skill", "promoted_at", "reason"}`` of the champion, or None."""
        path = self.root / ticker / CHAMPION_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def champions(self) -> dict[str, dict[str, Any]]:
        return {t: c for t in self.tickers() if (c := self.champion(t)) is not None}

    def new_version_dir(self, ticker: str, now: datetime) -> tuple[str, Path]:
        """A fresh, empty version directory named after ``now`` (UTC)."""
        version = now.strftime("%Y%m%dT%H%M%S%fZ")
        path = self.version_dir(ticker, version)
        path.mkdir(parents=True, exist_ok=False)
        return version, path

    def write_metadata(self, ticker: str, version: str, metadata: dict[str, Any]) -> None:
        """Write a version's metadata.json atomically (a version counts as complete, see
        :meth:`versions`, only once this file exists)."""
        _write_json(self.version_dir(ticker, version) / "metadata.json", metadata)

    def consider(self, ticker: str, version: str, now: datetime) -> tuple[bool, str]:
        """Apply :func:`promotion_decision` to ``version``; move the pointer if it wins.

        The decision and reason are also written into the version's metadata
        (``promotion``). The pointer is replaced atomically (write, then rename).
        """
        meta = self.metadata(ticker, version)
        promote, reason = promotion_decision(meta["validation_skill"], self.champion(ticker))
        meta["promotion"] = {"promoted": promote, "reason": reason, "decided_at": now.isoformat()}
        self.write_metadata(ticker, version, meta)
        if promote:
            _write_json(self.root / ticker / CHAMPION_FILE, {
                "version": version, "skill": meta["validation_skill"],
                "promoted_at": now.isoformat(), "reason": reason,
            })
        return promote, reason

    def load(self, ticker: str, version: str) -> LoadedModel:
        """Load a version in Keras safe mode.

        Raises:
            ModelError: the version does not exist, its files cannot be read, the model file
                would need unsafe deserialisation (e.g. a Lambda layer), or the scaler holds
                non-finite values.
        """
        import keras

        d = self.version_dir(ticker, version)
        if not (d / "metadata.json").exists():
            raise ModelError(f"no model version {ticker}/{version} under {self.root}")
        try:
            model = keras.saving.load_model(d / "model.keras", compile=False, safe_mode=True)
            scaler = Scaler.load(d / "scaler.json")
        except (OSError, ValueError) as err:
            raise ModelError(f"model version {ticker}/{version} cannot be loaded: {err}") from err
        return LoadedModel(ticker, version, model, scaler, self.metadata(ticker, version))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
