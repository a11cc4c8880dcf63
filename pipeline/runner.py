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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import typer
from filelock import FileLock, Timeout
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from config.errors import AlreadyRunning, ConfigError
from config.options import Bootstrap, Lake, StartAfter, UntilCaughtUp
from config.runtime import exit_on_error, setup_logging, wait_for_file
from config.settings import Settings, load_settings
from pipeline.checkpoints import APP_ID_FILE, new_app_id, restore_checkpoint, spark_checkpoint

log = logging.getLogger(__name__)

BatchWriter = Callable[[DataFrame, int], None]
"""A foreachBatch function: ``write(micro_batch, batch_id)``."""


@dataclass(frozen=True)
class Job:
    """A streaming job: its name (also its checkpoint folder), input stream and writer.

    Attributes:
        name: ``bronze``, ``silver``, ``gold`` or ``live``.
        stream: builds the job's streaming DataFrame.
        writer: ``writer(settings, app_id)`` returns the micro-batch function.
        excludes: see below.
    """

    name: str
    stream: Callable[[SparkSession, Settings], DataFrame]
    writer: Callable[[Settings, str], BatchWriter]
    excludes: tuple[str, ...] = ()
    """Jobs that keep the same tables another way: this one refuses a lake they have run on
    (:func:`refuse_mixed_modes`)."""
    warm_up: Callable[[SparkSession, Settings], None] | None = None
    """Run once before a continuous query starts (not with ``--until-caught-up``), so that
    its first micro-batch does not pay the application's start-up costs."""


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


def refuse_mixed_modes(settings: Settings, jobs: Sequence[Job]) -> None:
    """Refuse to run a job on a lake that a job it excludes has run on (its checkpoint holds
    an app id): the live query and the per-layer jobs each read the topic or Bronze from
    their own checkpoints, so mixing them would ingest the same records twice.

    Raises:
        ConfigError: such a checkpoint exists (the message names it and the way out), or
            ``jobs`` holds both.
    """
    names = {job.name for job in jobs}
    for job in jobs:
        for other in job.excludes:
            if other in names:
                pair = " and ".join(sorted((job.name, other)))
                raise ConfigError(f"jobs {pair} keep the same tables two ways; run one of them")
            if (settings.checkpoints / other / APP_ID_FILE).exists():
                raise ConfigError(
                    f"job {job.name} cannot run on the lake {settings.lake_dir}: job {other} "
                    f"has kept it (checkpoint {settings.checkpoints / other}), and the two "
                    f"would ingest the same records twice. Keep running job {other}, or give "
                    f"job {job.name} a new --lake")


def app_id_for(checkpoint: Path, job: str) -> str:
    """The Delta app id of this checkpoint (:func:`~pipeline.checkpoints.new_app_id`), created
    once per checkpoint.

    A new checkpoint gets a new id, so its batch ids (which restart at 0) are not mistaken
    for batches an older checkpoint already committed.
    """
    path = checkpoint / APP_ID_FILE
    if path.exists():
        return path.read_text().strip()
    app_id = new_app_id(job)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(app_id)
    tmp.replace(path)
    return app_id


def start_query(
    spark: SparkSession, settings: Settings, job: Job, available_now: bool
) -> StreamingQuery:
    """Start ``job`` as a streaming query (checkpoint :func:`spark_checkpoint`); a job that
    reads a Delta table and lost its checkpoint resumes where the lake says it stood
    (:func:`pipeline.checkpoints.restore_checkpoint`)."""
    checkpoint = settings.checkpoints / job.name
    restore_checkpoint(settings, job.name)
    app_id = app_id_for(checkpoint, job.name)
    writer = (
        job.stream(spark, settings)
        .writeStream.queryName(f"ticklake_{job.name}")
        .option("checkpointLocation", str(spark_checkpoint(settings, job.name).resolve()))
        .foreachBatch(job.writer(settings, app_id))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_interval_s} seconds")
    query = writer.start()
    log.info("started %s (query %s, app id %s)", job.name, query.id, app_id)
    return query


def run_jobs(settings: Settings, jobs: Sequence[Job], until_caught_up: bool = False,
             start_after: Path | None = None) -> None:
    """Run ``jobs`` (in data-flow order) in one Spark application until stopped or caught up.

    With ``start_after``, the Spark application starts first and the queries only once that
    file exists (``--start-after``: ``ticklake up`` starts Spark while it publishes).

    SIGTERM and SIGINT (Ctrl-C) stop the queries between micro-batches and return normally:
    the signal handler only sets a flag, and the queries are stopped from this thread, so no
    Spark call is made from inside a signal handler. Each micro-batch's progress is logged and
    kept under the lake (:mod:`pipeline.progress`, polled once a second).

    Raises:
        AlreadyRunning: a job's checkpoint is locked by another process.
        ConfigError: a job excludes another that has run on this lake (:func:`refuse_mixed_modes`).
        pyspark.errors.StreamingQueryException: a query failed.
    """
    from pipeline.progress import ProgressRecorder
    from pipeline.spark import spark_session

    refuse_mixed_modes(settings, jobs)
    stop = threading.Event()
    with ExitStack() as stack:
        stack.enter_context(_stop_on_signals(stop, [j.name for j in jobs]))
        for job in jobs:
            stack.enter_context(job_lock(settings.checkpoints / job.name, job.name))
        spark = spark_session(settings, f"ticklake-{'-'.join(j.name for j in jobs)}")
        if start_after is not None:
            log.info("Spark is up; the queries start once %s exists", start_after)
            wait_for_file(start_after, stop)
        recorder = ProgressRecorder(settings.lake_dir)
        queries: list[StreamingQuery] = []
        try:
            if until_caught_up:
                for job in jobs:
                    if stop.is_set():
                        break
                    query = start_query(spark, settings, job, available_now=True)
                    queries.append(query)
                    _await(partial(_terminated, query), stop, partial(recorder.poll, queries))
                    if not query.isActive:
                        log.info("%s caught up", job.name)
                    _raise_failure(queries)
            else:
                for job in jobs:
                    if job.warm_up is not None and not stop.is_set():
                        job.warm_up(spark, settings)
                if not stop.is_set():  # a signal during the warm-up: no query to start
                    queries = [start_query(spark, settings, job, False) for job in jobs]
                    _await(lambda: bool(spark.streams.awaitAnyTermination(1)), stop,
                           partial(recorder.poll, queries))
        finally:
            for query in queries:
                _stop_between_batches(query)
            recorder.poll(queries)
        _raise_failure(queries)
        if stop.is_set():
            log.info("stopped %s cleanly", ", ".join(j.name for j in jobs))


def _await(terminated: Callable[[], bool], stop: threading.Event,
           every_second: Callable[[], object]) -> None:
    """Wait until ``terminated()`` (it blocks up to a second) is true or ``stop`` is set;
    call ``every_second()`` between the waits (progress polling)."""
    while not stop.is_set() and not terminated():
        every_second()


STOP_WAIT_S = 120.0
"""How long a stop waits for a running micro-batch to finish before interrupting it."""


def _stop_between_batches(query: StreamingQuery) -> None:
    """Stop ``query`` once its current micro-batch (if any) has finished.

    ``StreamingQuery.stop()`` interrupts a running micro-batch; that batch is not committed
    and is replayed on restart (the sinks are idempotent), but its writer raises on the way
    out. So wait (up to :data:`STOP_WAIT_S`) until no trigger is active, then stop; if a new
    trigger slips in, its interruption is expected and not reported as an error.
    """
    if not query.isActive:
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.05)
    log.info("stopping %s", query.name)
    logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
    query.stop()


def _terminated(query: StreamingQuery) -> bool:
    return bool(query.awaitTermination(1))


def _raise_failure(queries: Sequence[StreamingQuery]) -> None:
    for query in queries:
        error = query.exception()
        if error is not None:
            raise error


@contextmanager
def _stop_on_signals(stop: threading.Event, names: list[str]) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while inside; restore the previous handlers after."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping %s after the current micro-batch", signum, ", ".join(names))
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(jobs: Sequence[Job]) -> None:
    """Entry point of ``spark-submit pipeline/<job>.py``: the same flags as ``ticklake job``."""
    names = ", ".join(job.name for job in jobs)

    def command(until_caught_up: UntilCaughtUp = False, lake: Lake = None,
                bootstrap_servers: Bootstrap = None, start_after: StartAfter = None) -> None:
        setup_logging()
        settings = load_settings(lake_dir=lake, bootstrap_servers=bootstrap_servers)
        run_jobs(settings, jobs, until_caught_up, start_after)

    command.__doc__ = (f"ticklake streaming job: {names}. Settings come from TICKLAKE_* "
                       "environment variables; these flags override them.")
    exit_on_error(lambda: typer.run(command))
