"""The jobs on a real Spark standalone cluster (a master and two workers on 127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from tests.conftest import TEST_JVM_OPTIONS, free_port
from tests.integration.test_faults import assert_same_silver_and_gold
from ticklake.broker import ensure_topic
from ticklake.cluster import LocalCluster
from ticklake.verify import compare_with_lake

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
EXECUTOR_JVM_OPTIONS = f"spark.executor.extraJavaOptions={TEST_JVM_OPTIONS}"
"""The cluster's executor JVMs run C1 alone too, as the drivers the tests start
(:data:`tests.conftest.TEST_JVM_OPTIONS`); local mode has no executor JVM."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A standalone master and two 1-core workers; stopped by PID afterwards."""
    settings = Settings(run_dir=tmp_path_factory.mktemp("cluster-run"),
                        cluster_master_port=free_port(), cluster_webui_port=free_port(),
                        cluster_workers=2, cluster_worker_memory="2g")
    local = LocalCluster(settings)
    try:
        local.start()
        yield local
    finally:
        local.stop()
    assert local.master.pid() is None and all(w.pid() is None for w in local.workers)


def test_the_jobs_on_a_standalone_cluster_give_the_same_lake_as_local(
    spark, broker: Settings, cluster: LocalCluster, tmp_path: Path
) -> None:
    """FB replayed: `spark-submit --master spark://...` runs bronze on the cluster (the master
    lists the application), `ticklake job silver gold` with TICKLAKE_SPARK_MASTER runs the rest
    there; Gold bars equal the source bars, and Silver and Gold equal a local[2] run."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="cluster.ticks")
    ensure_topic(settings)
    source = ReplaySource(["FB"])
    publish(source.ticks(), settings, progress=False)
    env = {**os.environ, "TICKLAKE_TOPIC": settings.topic,
           "TICKLAKE_SPARK_MASTER": "local[1]",  # must lose against spark-submit --master
           "TICKLAKE_SPARK_UI_ENABLED": "false",
           "PYSPARK_SUBMIT_ARGS": f"--conf {EXECUTOR_JVM_OPTIONS} pyspark-shell"}
    spark_submit = Path(sys.executable).parent / "spark-submit"
    submitted = subprocess.run(
        [str(spark_submit), "--master", cluster.url, "--conf", EXECUTOR_JVM_OPTIONS,
         str(ROOT / "pipeline" / "bronze.py"),
         "--until-caught-up", "--lake", str(settings.lake_dir), "--bootstrap-servers",
         settings.bootstrap_servers],
        env={**env, "PATH": f"{spark_submit.parent}:{env['PATH']}"}, capture_output=True,
        text=True, timeout=600)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    # spark-submit passes the Python driver's stderr through its stdout
    assert f"on master {cluster.url} (from spark-submit)" in submitted.stdout + submitted.stderr
    state = cluster.state() or {}
    assert any(app["name"] == "ticklake-bronze" for app in state.get("completedapps", []))

    on_cluster = subprocess.run(
        [sys.executable, "-m", "ticklake", "job", "silver", "gold", "--until-caught-up",
         "--lake", str(settings.lake_dir), "--bootstrap-servers", settings.bootstrap_servers],
        env={**env, "TICKLAKE_SPARK_MASTER": cluster.url}, capture_output=True, text=True,
        timeout=900)
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    assert f"on master {cluster.url} (from the settings)" in on_cluster.stderr
    assert compare_with_lake(source.bars, settings.lake_dir)["all_equal"]

    reference = settings.with_overrides(lake_dir=tmp_path / "reference")
    run_jobs(reference, ["bronze", "silver", "gold"], until_caught_up=True)
    assert_same_silver_and_gold(settings.lake_dir, reference.lake_dir)
