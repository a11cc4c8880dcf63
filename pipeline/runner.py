"""Run streaming jobs: wire each job's stream to its exactly-once foreachBatch writer.

One checkpoint directory per job under ``Settings.checkpoints``; a lock file in it makes a
second run of the same job on the same checkpoint refuse. ``until_caught_up`` runs each job
with ``Trigger.AvailableNow`` in pipeline order (bronze, silver, gold) and returns; otherwise
all jobs run concurrently with a processing-time trigger until stopped (SIGTERM / Ctrl-C stop
them gracefully).

This module knows no job: each job module (:mod:`pipeline.bronze`, ...) defines its
:class:`Job` and :mod:`pipeline.jobs` is the registry, so nothing here imports them.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from filelock import FileLock, Timeout
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from config.errors import AlreadyRunning
from config.options import Bootstrap, Lake, UntilCaughtUp
from config.runtime import exit_on_error, setup_logging
from config.settings import Settings, load_settings

log = logging.getLogger(__name__)

BatchWriter = Callable[[DataFrame, int], None]
"""A foreachBatch function: ``write(micro_batch, batch_id)``."""


@dataclass(frozen=True)
class Job:
    """A streaming job: its name (also its checkpoint folder), input stream and writer.

    Attributes:
        name: ``bronze``, ``silver`` or ``gold``.
        stream: builds the job's streaming DataFrame.
        writer: ``writer(settings, app_id)`` returns the micro-batch function.
    """

    name: str
    stream: Callable[[SparkSession, Settings], DataFrame]
    writer: Callable[[Settings, str], BatchWriter]


@contextmanager
def job_lock(checkpoint: Path, job: str) -> Iterator[None]:
    """Hold an exclusive lock on ``checkpoint`` for the job's lifetime (``filelock``).

    The OS releases it when the process dies, also on ``kill -9``. The holder's PID is kept
    next to the lock so a refusal can name it.

    Raises:
        AlreadyRunning: another process holds it.
    """
    checkpoint.mkdir(parents=True, exist_ok=True)
    lock = FileLock(checkpoint / "LOCK", blocking=False)
    owner = checkpoint / "LOCK.pid"
    try:
        lock.acquire()
    except Timeout:
        pid = owner.read_text().strip() if owner.exists() else "?"
        raise AlreadyRunning(
            f"job {job} is already running on checkpoint {checkpoint} (pid {pid}); stop it "
            "first, or use another --lake / checkpoint directory"
        ) from None
    owner.write_text(str(os.getpid()))
    try:
        yield
    finally:
        lock.release()


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


def run_jobs(settings: Settings, jobs: Sequence[Job], until_caught_up: bool = False) -> None:
    """Run ``jobs`` (in data-flow order) in one Spark application until stopped or caught up.

    Raises:
        AlreadyRunning: a job's checkpoint is locked by another process.
        pyspark.errors.StreamingQueryException: a query failed.
    """
    from pipeline.spark import spark_session

    with ExitStack() as stack:
        for job in jobs:
            stack.enter_context(job_lock(settings.checkpoints / job.name, job.name))
        spark = spark_session(settings, f"ticklake-{'-'.join(j.name for j in jobs)}")
        if until_caught_up:
            for job in jobs:
                query = start_query(spark, settings, job, available_now=True)
                query.awaitTermination()
                log.info("%s caught up", job.name)
            return
        queries = [start_query(spark, settings, job, False) for job in jobs]

        def stop(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping %s", signum, ", ".join(j.name for j in jobs))
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
            error = q.exception()
            if error is not None:
                raise error


def main(jobs: Sequence[Job]) -> None:
    """Entry point of ``spark-submit pipeline/<job>.py``: the same flags as ``ticklake job``."""
    names = ", ".join(job.name for job in jobs)

    def command(until_caught_up: UntilCaughtUp = False, lake: Lake = None,
                bootstrap_servers: Bootstrap = None) -> None:
        setup_logging()
        settings = load_settings(lake_dir=lake, bootstrap_servers=bootstrap_servers)
        run_jobs(settings, jobs, until_caught_up)

    command.__doc__ = (f"ticklake streaming job: {names}. Settings come from TICKLAKE_* "
                       "environment variables; these flags override them.")
    exit_on_error(lambda: typer.run(command))
