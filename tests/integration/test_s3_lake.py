"""A lake in an S3 bucket (a local moto endpoint): the storage layer, executor-side data files
and Spark read and write the same Delta tables there, and nothing lands in a local folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from config.errors import ConfigError
from config.location import (
    delta_storage_options,
    describe,
    is_object_store,
    lake_location,
    spark_s3_conf,
    table_uri,
)
from config.settings import Settings, load_settings
from config.tables import BRONZE_TICKS, SILVER_TICKS, SILVER_WATERMARKS
from storage.delta import open_table, read_table
from storage.facts import lake_status
from storage.files import write_data_files
from storage.sink import DeltaSink
from ticklake.processes import free_port
from ticklake.s3_endpoint import LocalS3Endpoint

pytestmark = pytest.mark.integration
REFERENCE_TICKERS = ["IBM"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A local S3 endpoint with a fresh bucket; the AWS variables point at it while the
    module runs. Yields ``{"bucket", **AWS variables}``; the endpoint is stopped by its PID."""
    endpoint = LocalS3Endpoint(Settings(run_dir=tmp_path_factory.mktemp("s3-run")),
                               port=free_port())
    endpoint.start()
    try:
        bucket = f"lake-{uuid.uuid4().hex[:8]}"
        endpoint.create_bucket(bucket)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in endpoint.environment().items():
                patch.setenv(key, value)
            yield {"bucket": bucket, **endpoint.environment()}
    finally:
        endpoint.stop()


@pytest.fixture(scope="module")
def reference(spark: object, broker: Settings, tmp_path_factory: pytest.TempPathFactory
              ) -> Path:
    """A local lake the jobs kept from IBM's real ticks (:data:`REFERENCE_TICKERS`) on a topic
    of their own, without faults: what an S3 lake of the same ticks must equal (one
    partition per ticker, so the same ticks published in the same order have the same
    offsets on every topic)."""
    from pipeline.jobs import run_jobs
    from producer.publisher import publish
    from producer.sources.replay import ReplaySource
    from ticklake.broker import ensure_topic

    settings = broker.with_overrides(lake_dir=tmp_path_factory.mktemp("s3-ref") / "lake",
                                     topic="s3.reference")
    ensure_topic(settings)
    publish(list(ReplaySource(REFERENCE_TICKERS).ticks()), settings, progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
    return settings.lake_dir


def _keys(s3: dict[str, str], prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"],
                          aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
                          region_name=s3["AWS_REGION"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _point_spark_at_endpoint(spark: object, s3: dict[str, str]) -> None:
    """Point the shared SparkSession's S3A at the module's endpoint. The session may have
    started before the endpoint (its JVM's environment then lacks the AWS variables, which a
    job's JVM has), so the credentials are set too."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    conf = {**spark_s3_conf(), "spark.hadoop.fs.s3a.access.key": s3["AWS_ACCESS_KEY_ID"],
            "spark.hadoop.fs.s3a.secret.key": s3["AWS_SECRET_ACCESS_KEY"]}
    for key, value in conf.items():
        hadoop.set(key.removeprefix("spark.hadoop."), value)


def _bronze_rows(offsets: range) -> pa.Table:
    now = datetime(2026, 12, 8, tzinfo=UTC)
    return pa.table({
        "key": [b"AAPL"] * len(offsets), "value": [b"{}"] * len(offsets),
        "topic": ["ticks"] * len(offsets), "partition": [0] * len(offsets),
        "offset": list(offsets), "timestamp": [now] * len(offsets),
        "timestampType": [0] * len(offsets), "ingest_time": [now] * len(offsets),
    }, schema=BRONZE_TICKS.schema)


def test_lake_locations_keep_s3_uris_and_name_the_unsupported(tmp_path: Path) -> None:
    """A local folder stays a pathlib path; s3:// and s3a:// become the same S3 path with the
    environment's endpoint; other schemes and a missing bucket are refused by name."""
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "very-secret", "AWS_REGION": "eu-west-1"}
    local = lake_location(tmp_path / "lake")
    assert isinstance(local, Path) and not is_object_store(local)
    remote = lake_location("s3a://bucket/prefix/", env)
    assert str(remote) == "s3://bucket/prefix" and is_object_store(remote)
    assert str(BRONZE_TICKS.path(remote)) == "s3://bucket/prefix/bronze/ticks"
    assert table_uri(remote / "silver" / "ticks") == "s3://bucket/prefix/silver/ticks"
    assert delta_storage_options(local) is None
    assert delta_storage_options(remote, env) == {
        "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "very-secret",
        "AWS_ALLOW_HTTP": "true", "AWS_CONDITIONAL_PUT": "etag"}
    assert spark_s3_conf(env) == {
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false"}
    assert "very-secret" not in describe(env) and "127.0.0.1:9" in describe(env)
    for bad in ("gs://bucket/lake", "s3:///lake"):
        with pytest.raises(ConfigError, match="lake"):
            load_settings(lake_dir=bad)


def test_storage_layer_appends_once_and_reads_back_from_the_bucket(
        s3: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A DeltaSink on s3:// commits each batch id once; read_table, the lake's status and the
    executor-side data files (write_data_files + commit_files) work on the bucket; nothing is
    written to a local folder named after the URI."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(lake_dir=f"s3://{s3['bucket']}/storage")
    sink = DeltaSink(BRONZE_TICKS, settings.lake_dir, "test-app")
    assert sink.path == f"s3://{s3['bucket']}/storage/bronze/ticks"
    assert sink.append(_bronze_rows(range(0, 3)), 0)
    assert not sink.append(_bronze_rows(range(0, 3)), 0)  # a replay commits nothing
    records = list(write_data_files(iter(_bronze_rows(range(3, 8)).to_batches()), sink.path,
                                    BRONZE_TICKS.schema))
    assert sink.commit_files(pa.Table.from_batches(records).to_pylist(), 1)
    offsets = read_table(BRONZE_TICKS, settings.lake_dir, ["offset"]).column("offset")
    assert sorted(offsets.to_pylist()) == list(range(8))
    delta = open_table(BRONZE_TICKS, settings.lake_dir)
    assert delta is not None and delta.transaction_version("test-app") == 1
    status = lake_status(settings.lake_dir)
    assert status["lake"] == f"s3://{s3['bucket']}/storage"
    assert status["tables"]["bronze.ticks"]["rows"] == 8
    keys = _keys(s3, "storage/bronze/ticks/")
    assert sum(k.endswith(".parquet") for k in keys) == 2
    assert any(k.startswith("storage/bronze/ticks/_delta_log/") for k in keys)
    assert list(tmp_path.iterdir()) == []

    # progress records: S3 has no appends; a new writer reads the object once, then keeps
    # its own copy of the lines (storage.progress.append_progress)
    import threading

    from storage.progress import append_progress, progress_records
    folder = settings.lake_dir / "_progress"
    append_progress(folder, "bronze", '{"batch_id": 0}', threading.Lock())
    written: dict[str, list[str]] = {}
    for batch in (1, 2):
        append_progress(folder, "bronze", f'{{"batch_id": {batch}}}', threading.Lock(), written)
    assert written["bronze"] == [f'{{"batch_id": {b}}}' for b in range(3)]
    assert [r["batch_id"] for r in progress_records(settings.lake_dir, "bronze")] == [0, 1, 2]


@pytest.mark.spark
def test_spark_and_delta_rs_share_tables_in_the_bucket(spark: object, s3: dict[str, str]
                                                       ) -> None:
    """Spark (S3A) reads a table delta-rs wrote to s3:// and appends to it idempotently
    (txnAppId/txnVersion); delta-rs reads Spark's commit."""
    from pyspark.sql import SparkSession

    from pipeline.schemas import spark_schema

    assert isinstance(spark, SparkSession)
    _point_spark_at_endpoint(spark, s3)
    lake = lake_location(f"s3://{s3['bucket']}/shared")
    sink = DeltaSink(SILVER_WATERMARKS, lake, "rs")
    now = datetime(2026, 12, 8, tzinfo=UTC)
    sink.append(pa.table({"ticker": ["AAPL"], "watermark": [now], "updated_at": [now]}).cast(
        SILVER_WATERMARKS.schema), 0)
    path = table_uri(SILVER_WATERMARKS.path(lake))
    assert [r.ticker for r in spark.read.format("delta").load(path).collect()] == ["AAPL"]
    rows = spark.createDataFrame([("MSFT", now, now)], spark_schema(SILVER_WATERMARKS))
    for _ in range(2):  # the second write is a replay: Delta skips it
        (rows.write.format("delta").mode("append").option("txnAppId", "spark")
         .option("txnVersion", 0).save(path))
    data = read_table(SILVER_WATERMARKS, lake, ["ticker"])
    assert sorted(data.column("ticker").to_pylist()) == ["AAPL", "MSFT"]


def _committed_batches(lake: Path, job: str) -> int:
    commits = lake / "_checkpoints" / job / "spark" / "commits"
    return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.exists() else 0


@pytest.mark.spark
@pytest.mark.slow
def test_jobs_on_an_s3_lake_survive_kill_9_and_equal_a_local_lake(
        spark: object, broker: Settings, s3: dict[str, str], reference: Path,
        tmp_path: Path) -> None:
    """The bronze, silver and gold jobs (one `ticklake job` process) on s3://, killed with
    SIGKILL (JVM included) twice at a random moment after a micro-batch of their own, then
    run until caught up: Bronze holds every produced (partition, offset) once, and Silver and
    Gold equal those of a local lake the jobs kept from the same topic without kills. The
    jobs' checkpoints, progress records and tables are in the bucket; nothing is written to
    a local folder named after the URI."""
    import random

    from pyspark.sql import SparkSession

    from producer.publisher import publish
    from producer.sources.replay import ReplaySource
    from ticklake.broker import ensure_topic
    from ticklake.processes import stop_pid, wait_until

    from .test_faults import assert_same_silver_and_gold

    assert isinstance(spark, SparkSession)
    _point_spark_at_endpoint(spark, s3)
    settings = broker.with_overrides(lake_dir=f"s3://{s3['bucket']}/jobs", topic="s3.ticks")
    ensure_topic(settings)
    ticks = list(ReplaySource(REFERENCE_TICKERS).ticks())
    produced = publish(ticks, settings, progress=False).produced
    env = {**os.environ, "TICKLAKE_TOPIC": settings.topic, "TICKLAKE_TRIGGER_INTERVAL_S": "0.5",
           "TICKLAKE_MAX_OFFSETS_PER_TRIGGER": "400", "TICKLAKE_SPARK_UI_ENABLED": "false"}
    command = [sys.executable, "-m", "ticklake", "job", "bronze", "silver", "gold", "--lake",
               f"s3://{s3['bucket']}/jobs", "--bootstrap-servers", settings.bootstrap_servers]
    rng = random.Random(20261208)
    log = tmp_path / "jobs.log"
    for kill in range(2):
        before = _committed_batches(settings.lake_dir, "gold")
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, cwd=tmp_path)
        try:
            def ran(proc: subprocess.Popen[bytes] = proc, before: int = before) -> bool:
                return proc.poll() is not None or _committed_batches(
                    settings.lake_dir, "gold") > before

            assert wait_until(ran, 300), f"kill {kill}: no micro-batch in 300 s"
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 3.0))
            os.killpg(proc.pid, 9)
            proc.wait()
        finally:
            if proc.poll() is None:
                stop_pid(proc.pid, timeout_s=20)
    done = subprocess.run([*command, "--until-caught-up"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    bronze = read_table(BRONZE_TICKS, settings.lake_dir, ["partition", "offset"]).to_pylist()
    assert len(bronze) == len({(r["partition"], r["offset"]) for r in bronze}) == produced
    assert_same_silver_and_gold(settings.lake_dir, reference)
    keys = _keys(s3, "jobs/")
    for prefix in ("_checkpoints/bronze/spark/commits/", "_checkpoints/gold/app_id",
                   "_progress/gold.jsonl", "gold/bars_1d/_delta_log/"):
        assert any(k.startswith(f"jobs/{prefix}") for k in keys), prefix
    # locally: the log and the job locks of the S3 lake (run dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ticklake", "jobs.log"]
    assert [p.name for p in (tmp_path / ".ticklake").iterdir()] == ["locks"]
    assert not any("s3:" in str(p) for p in tmp_path.rglob("*"))


def test_model_registry_maintenance_and_errors_on_the_bucket(
        s3: dict[str, str], lake: Path) -> None:
    """A registry version written to s3:// (staged locally, uploaded with its metadata) serves
    the same forecast as the same version in a local lake; maintenance checkpoints and
    vacuums every table but leaves delta-spark's tables uncompacted on S3; a missing bucket
    and an unreachable endpoint stop with one line naming them."""
    import shutil

    import numpy as np

    from analytics.registry import Registry
    from config.errors import DependencyError
    from config.location import require_lake
    from storage.maintenance import maintain
    from tests.model_registry import register_model

    now = datetime(2026, 12, 8, tzinfo=UTC)
    local = register_model(lake, "AAA", "v1")
    remote = Registry(lake_location(f"s3://{s3['bucket']}/registry"))
    version, staged = remote.new_version_dir("AAA", now)
    assert not is_object_store(staged)
    shutil.copytree(local, staged, dirs_exist_ok=True)
    meta = json.loads((staged / "metadata.json").read_text())
    (staged / "metadata.json").unlink()
    assert remote.versions("AAA") == []  # not complete before its metadata
    remote.write_metadata("AAA", version, meta)
    assert not staged.exists() and remote.versions("AAA") == [version]
    assert remote.consider("AAA", version, now)[0]
    assert remote.champion("AAA")["version"] == version  # type: ignore[index]
    prices = np.array([10.0, 10.5, 11.0, 10.8, 11.2, 11.1, 12.0, 12.5])
    volumes = np.array([900.0, 1200, 1500, 800, 1000, 2500, 1100, 1300])
    want = Registry(lake).load("AAA", "v1").forecast(prices, volumes, horizon=1)
    got = remote.load("AAA", version).forecast(prices, volumes, horizon=1)
    assert got == want
    assert any(k.endswith("/h1/model.keras") for k in _keys(s3, "registry/models/AAA/"))

    storage = lake_location(f"s3://{s3['bucket']}/maintained")
    for table in (BRONZE_TICKS, SILVER_WATERMARKS):
        sink = DeltaSink(table, storage, "maintenance-test")
        for batch in range(2):
            rows = (_bronze_rows(range(batch * 3, batch * 3 + 3)) if table is BRONZE_TICKS
                    else pa.table({"ticker": ["A"], "watermark": [now], "updated_at": [now]}))
            sink.append(rows.cast(table.schema), batch)
    report = maintain(storage)
    assert set(report) == {"bronze.ticks", "silver.watermarks"}
    assert "not compacted on S3" in report["bronze.ticks"]["skipped"]
    assert report["bronze.ticks"]["files_after"] == 2  # left as it was
    assert report["silver.watermarks"]["skipped"] is None
    assert report["silver.watermarks"]["files_after"] == 1  # compacted by delta-rs
    for table in ("bronze/ticks", "silver/watermarks"):
        assert any(k.endswith(".checkpoint.parquet") for k in _keys(s3, f"maintained/{table}/"))

    with pytest.raises(DependencyError, match=r"the bucket 'no-such-bucket' .* does not exist"):
        require_lake("s3://no-such-bucket/lake")
    with pytest.raises(DependencyError, match=r"cannot reach the S3 endpoint http://127.0.0.1:9 "):
        require_lake(f"s3://{s3['bucket']}/lake", {**s3, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    require_lake(f"s3://{s3['bucket']}/lake")  # answers


@pytest.mark.spark
@pytest.mark.slow
def test_an_s3_outage_of_60_s_is_ridden_out_and_loses_nothing(
        spark: object, broker: Settings, s3: dict[str, str], reference: Path,
        tmp_path: Path) -> None:
    """The jobs (one continuous `ticklake job bronze silver gold`) reach the bucket through a
    forwarder that is taken down for 60 s while ticks keep arriving on the topic: the job
    process stays up (a query whose client gave up is restarted from its checkpoint with
    back-off), catches up once the endpoint answers, and stops cleanly on SIGTERM; Bronze
    then holds every produced (partition, offset) once and Silver and Gold equal a local
    lake's."""
    from producer.publisher import publish
    from producer.sources.replay import ReplaySource
    from tests.tcp_proxy import TcpProxy
    from ticklake.broker import ensure_topic
    from ticklake.processes import stop_pid, wait_until

    from .test_faults import assert_same_silver_and_gold

    _point_spark_at_endpoint(spark, s3)
    settings = broker.with_overrides(lake_dir=f"s3://{s3['bucket']}/outage",
                                     topic="s3.outage")
    ensure_topic(settings)
    ticks = list(ReplaySource(REFERENCE_TICKERS).ticks())
    half = len(ticks) // 2
    produced = publish(ticks[:half], settings, progress=False).produced
    endpoint_port = int(s3["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    proxy = TcpProxy(free_port(), endpoint_port)
    proxy.up()
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "TICKLAKE_TOPIC": settings.topic,
           "TICKLAKE_TRIGGER_INTERVAL_S": "0.5", "TICKLAKE_MAX_OFFSETS_PER_TRIGGER": "1000",
           "TICKLAKE_SPARK_UI_ENABLED": "false"}
    log = tmp_path / "jobs.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ticklake", "job", "bronze", "silver", "gold", "--lake",
             f"s3://{s3['bucket']}/outage", "--bootstrap-servers", settings.bootstrap_servers],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=tmp_path)
    try:
        assert wait_until(lambda: proc.poll() is not None or read_table(
            SILVER_TICKS, settings.lake_dir, ["tick_id"]).num_rows > 0, 300, interval_s=1.0
                          ), "no Silver micro-batch in 300 s"  # the stream is flowing
        assert proc.poll() is None, log.read_text()[-3000:]
        proxy.down()
        produced += publish(ticks[half:], settings, progress=False).produced
        time.sleep(60)
        assert proc.poll() is None, "the jobs ended during the outage:\n" + log.read_text()[-3000:]
        proxy.up()

        def caught_up() -> bool:
            silver = read_table(SILVER_TICKS, settings.lake_dir, ["tick_id"]).num_rows
            return proc.poll() is not None or silver == produced

        assert wait_until(caught_up, 420, interval_s=2.0), "not caught up in 420 s"
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(15)  # Gold's micro-batch of the last Silver commit
    finally:
        if proc.poll() is None:
            stop_pid(proc.pid, timeout_s=60)
        proc.wait()
        proxy.down()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    # where a client gave up during the outage, the query was restarted from its checkpoint
    # (delta-rs and s3fs give up within seconds; S3A retried through it in some runs)
    print(f"queries restarted: {text.count('restarting the query from its checkpoint')}")
    assert "stopped bronze, silver, gold cleanly" in text
    done = subprocess.run(  # finishes Gold if its last micro-batch was still running
        [sys.executable, "-m", "ticklake", "job", "gold", "--until-caught-up", "--lake",
         f"s3://{s3['bucket']}/outage"], env={**env, "AWS_ENDPOINT_URL": s3["AWS_ENDPOINT_URL"]},
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    bronze = read_table(BRONZE_TICKS, settings.lake_dir, ["partition", "offset"]).to_pylist()
    assert len(bronze) == len({(r["partition"], r["offset"]) for r in bronze}) == produced
    assert_same_silver_and_gold(settings.lake_dir, reference)
