"""Run streaming jobs: wire each job's stream to its exactly-once foreachBatch writer.

One checkpoint directory per job under ``Settings.checkpoints``; a lock file in it makes a
second run of the same job on the same checkpoint refuse. ``until_caught_up`` runs each job
with ``Trigger.AvailableNow`` in pipeline order (bronze, silver, gold) and returns; otherwise
all jobs run concurrently with a processing-time trigger until stopped (SIGTERM / Ctrl-C stop
them gracefully).
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from config.settings import Settings, load_settings
from ticklake.errors import AlreadyRunning, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A streaming job: its input stream and its micro-batch writer."""

    name: str
    stream: Callable[[SparkSession, Settings], DataFrame]
    writer: Callable[[Settings, str], Callable[[DataFrame, int], None]]


def jobs() -> dict[str, Job]:
    """The pipeline's jobs, in data-flow order."""
    from pipeline import bronze, gold, silver

    return {
        "bronze": Job("bronze", bronze.stream, bronze.bronze_writer),
        "silver": Job("silver", silver.stream, silver.silver_writer),
        "gold": Job("gold", gold.stream, gold.gold_writer),
    }


JOB_NAMES = ("bronze", "silver", "gold")


@contextmanager
def job_lock(checkpoint: Path, job: str) -> Iterator[None]:
    """Hold an exclusive lock on ``checkpoint`` for the job's lifetime.

    The OS releases it when the process dies, also on ``kill -9``.

    Raises:
        AlreadyRunning: another process holds it.
    """
    checkpoint.mkdir(parents=True, exist_ok=True)
    lock_path = checkpoint / "LOCK"
    handle: IO[str] = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"job {job} is already running on checkpoint {checkpoint} (pid {owner}); stop it "
            "first, or use another --lake / checkpoint directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def app_id_for(checkpoint: Path, job: str) -> str:
    """The Delta app id of this checkpoint: ``<job>-<uuid>``, created once per checkpoint.

    A new checkpoint gets a new id, so its batch ids (which restart at 0) are not mistaken
    for batches an older checkpoint already committed.
    """
    path = checkpoint / "app_id"
    if path.exists():
        return path.read_text().strip()
    app_id = f"{job}-{uuid.uuid4().hex[:16]}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(app_id)
    tmp.replace(path)
    return app_id


def start_query(
    spark: SparkSession, settings: Settings, job: Job, available_now: bool
) -> StreamingQuery:
    """Start ``job`` as a streaming query (checkpoint ``<checkpoints>/<job>/spark``)."""
    checkpoint = settings.checkpoints / job.name
    app_id = app_id_for(checkpoint, job.name)
    writer = (
        job.stream(spark, settings)
        .writeStream.queryName(f"ticklake_{job.name}")
        .option("checkpointLocation", str((checkpoint / "spark").resolve()))
        .foreachBatch(job.writer(settings, app_id))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_interval_s} seconds")
    query = writer.start()
    log.info("started %s (query %s, app id %s)", job.name, query.id, app_id)
    return query


def run_jobs(settings: Settings, names: Sequence[str], until_caught_up: bool = False) -> None:
    """Run the named jobs in one Spark application until stopped or caught up.

    Raises:
        ConfigError: an unknown job name.
        AlreadyRunning: a job's checkpoint is locked by another process.
        pyspark.errors.StreamingQueryException: a query failed.
    """
    registry = jobs()
    unknown = [n for n in names if n not in registry]
    if unknown or not names:
        raise ConfigError(f"unknown job(s) {unknown}; choose from {', '.join(JOB_NAMES)}")
    ordered = [n for n in JOB_NAMES if n in names]
    from pipeline.spark import spark_session

    with ExitStack() as stack:
        for name in ordered:
            stack.enter_context(job_lock(settings.checkpoints / name, name))
        spark = spark_session(settings, f"ticklake-{'-'.join(ordered)}")
        if until_caught_up:
            for name in ordered:
                query = start_query(spark, settings, registry[name], available_now=True)
                query.awaitTermination()
                log.info("%s caught up", name)
            return
        queries = [start_query(spark, settings, registry[n], False) for n in ordered]

        def stop(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping %s", signum, ", ".join(ordered))
            for q in queries:
                q.stop()

        signal.signal(signal.SIGTERM, stop)
        try:
            spark.streams.awaitAnyTermination()
        except KeyboardInterrupt:
            stop(signal.SIGINT, None)
        finally:
            for q in queries:
                if q.isActive:
                    q.stop()
        for q in queries:
            if q.exception() is not None:
                raise q.exception()  # type: ignore[misc]


def main(names: Sequence[str], argv: Sequence[str] | None = None) -> None:
    """Entry point of ``spark-submit pipeline/<job>.py``."""
    parser = argparse.ArgumentParser(
        prog=f"pipeline/{names[0]}.py",
        description=f"ticklake streaming job: {', '.join(names)}. Settings come from "
        "TICKLAKE_* environment variables; these flags override them.",
    )
    parser.add_argument("--lake", type=Path, help="lake directory (default ./lake)")
    parser.add_argument("--bootstrap-servers", help="Kafka HOST:PORT (default 127.0.0.1:9092)")
    parser.add_argument(
        "--until-caught-up", action="store_true",
        help="process what is available now (Trigger.AvailableNow), then exit",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(lake_dir=args.lake, bootstrap_servers=args.bootstrap_servers)
    run_jobs(settings, names, args.until_caught_up)
