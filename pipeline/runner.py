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
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from config.errors import AlreadyRunning, ConfigError
from config.location import is_object_store, require_lake, table_uri, write_atomically
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


def lock_folder(settings: Settings, job: str) -> Path:
    """Where ``job``'s lock lives: its checkpoint folder on a local lake; on an S3 lake, which
    has no locks, ``<run_dir>/locks/<bucket and prefix>/<job>`` on this host (so one host
    runs each job of a lake once; docs/architecture.md, "The lake on S3")."""
    checkpoint = settings.checkpoints / job
    if not is_object_store(checkpoint):
        return checkpoint
    name = table_uri(checkpoint).removeprefix("s3://").replace("/", "_")
    return settings.run_dir / "locks" / name


@contextmanager
def job_lock(folder: Path, job: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (:func:`lock_folder`) for the job's lifetime
    (``filelock``).

    The OS releases it when the process dies, also on ``kill -9``. The holder's PID is kept
    next to the lock so a refusal can name it.

    Raises:
        AlreadyRunning: another process holds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "LOCK", blocking=False)
    owner = folder / "LOCK.pid"
    try:
        lock.acquire()
    except Timeout:
        pid = owner.read_text().strip() if owner.exists() else "?"
        raise AlreadyRunning(
            f"job {job} is already running on checkpoint {folder} (pid {pid}); stop it "
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
    write_atomically(path, app_id)
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
        .option("checkpointLocation", table_uri(spark_checkpoint(settings, job.name)))
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
        DependencyError: an S3 lake's bucket does not answer (:func:`config.location.require_lake`).
        ConfigError: a job excludes another that has run on this lake (:func:`refuse_mixed_modes`).
        pyspark.errors.StreamingQueryException: a query failed.
    """
    from pipeline.progress import ProgressRecorder
    from pipeline.spark import spark_session

    require_lake(settings.lake_dir)
    refuse_mixed_modes(settings, jobs)
    stop = threading.Event()
    with ExitStack() as stack:
        stack.enter_context(_stop_on_signals(stop, [j.name for j in jobs]))
        for job in jobs:
            stack.enter_context(job_lock(lock_folder(settings, job.name), job.name))
        spark = spark_session(settings, f"ticklake-{'-'.join(j.name for j in jobs)}")
        if start_after is not None:
            log.info("Spark is up; the queries start once %s exists", start_after)
            wait_for_file(start_after, stop)
        recorder = ProgressRecorder(settings.lake_dir)
        budget = OutageBudget(settings)
        queries: list[StreamingQuery] = []

        def poll() -> None:  # a recorded micro-batch means the storage answers again
            if recorder.poll(queries):
                budget.recovered()

        try:
            if until_caught_up:
                for job in jobs:
                    if stop.is_set():
                        break
                    query = start_query(spark, settings, job, available_now=True)
                    while True:
                        queries.append(query)
                        _await(partial(_terminated, query), stop, poll)
                        if query.isActive or not _restart_after_outage(
                                [(job.name, query)], budget, stop):
                            break
                        recorder.poll([query])
                        queries.remove(query)
                        query = _start_when_reachable(spark, settings, job, True, budget, stop)
                    if not query.isActive and query.exception() is None:
                        log.info("%s caught up", job.name)
                    _raise_failure(queries)
            else:
                for job in jobs:
                    if job.warm_up is not None and not stop.is_set():
                        job.warm_up(spark, settings)
                if not stop.is_set():  # a signal during the warm-up: no query to start
                    queries = [start_query(spark, settings, job, False) for job in jobs]
                    _run_continuously(spark, settings, jobs, queries, budget, stop, poll)
        finally:
            for query in queries:
                _stop_between_batches(query)
            recorder.poll(queries)
        _raise_failure(queries)
        if stop.is_set():
            log.info("stopped %s cleanly", ", ".join(j.name for j in jobs))


STORAGE_UNREACHABLE = (
    "Could not connect to the endpoint URL",  # botocore (s3fs)
    "Cannot connect to host",  # aiohttp (s3fs)
    "Connection refused",  # the JVM, delta-rs' object_store
    "Unable to execute HTTP request",  # the AWS SDK (S3A)
    "error sending request",  # object_store (delta-rs)
    "Connection reset by peer",
)
"""Texts of a failure that means the S3 endpoint could not be reached, as each client of the
lake words it (:func:`storage_unreachable`)."""


def storage_unreachable(error: BaseException) -> bool:
    """Whether a query's failure says the lake's storage could not be reached (a connection
    refused, reset or not made), not that something was wrong with the data or the code."""
    return _outage_line(error) is not None


def _outage_line(error: BaseException) -> str | None:
    """The line of ``error``'s text that says the storage could not be reached, if any."""
    for line in str(error).splitlines():
        if any(marker in line for marker in STORAGE_UNREACHABLE):
            return line.strip()
    return None


class OutageBudget:
    """How long a job keeps restarting queries that failed on an unreachable S3 endpoint:
    back-off 2, 4, 8, 16, 30, 30... s, until the outage (from the first failure, reset by
    :meth:`recovered`) has lasted ``settings.storage_outage_s``. A local lake never retries."""

    def __init__(self, settings: Settings) -> None:
        self.limit_s = settings.storage_outage_s if is_object_store(settings.lake_dir) else 0.0
        self.started: float | None = None
        self.attempts = 0

    def wait(self, job: str, error: BaseException, stop: threading.Event) -> bool:
        """After ``error`` ended ``job``'s query: wait the back-off and return True to
        restart it, or False (not an outage, the budget is spent, or ``stop`` was set)."""
        if not storage_unreachable(error) or self.limit_s <= 0:
            return False
        now = time.monotonic()
        self.started = self.started if self.started is not None else now
        delay = min(30.0, 2.0 * 2 ** self.attempts)
        if now + delay - self.started > self.limit_s:
            log.error("%s: the S3 endpoint has been unreachable for %.0f s, longer than "
                      "TICKLAKE_STORAGE_OUTAGE_S=%.0f: giving up", job, now - self.started,
                      self.limit_s)
            return False
        self.attempts += 1
        log.warning("%s: the S3 endpoint could not be reached (%s); restarting the query "
                    "from its checkpoint in %.0f s (attempt %d)", job,
                    (_outage_line(error) or "")[:200], delay, self.attempts)
        return not stop.wait(delay)

    def recovered(self) -> None:
        """A micro-batch went through: the next failure starts a new outage."""
        self.started, self.attempts = None, 0


def _restart_after_outage(failed: Sequence[tuple[str, StreamingQuery]], budget: OutageBudget,
                          stop: threading.Event) -> bool:
    """Whether every query of ``failed`` (terminated) failed on an unreachable S3 endpoint
    and the budget allows a restart (after its back-off, :meth:`OutageBudget.wait`)."""
    errors = [(name, query.exception()) for name, query in failed]
    first = errors[0][1] if errors else None
    if first is None or any(e is None or not storage_unreachable(e) for _, e in errors):
        return False
    return budget.wait(", ".join(name for name, _ in errors), first, stop)


def _start_when_reachable(spark: SparkSession, settings: Settings, job: Job,
                          available_now: bool, budget: OutageBudget,
                          stop: threading.Event) -> StreamingQuery:
    """:func:`start_query`, tried again while it fails on an unreachable S3 endpoint and the
    budget lasts.

    Raises:
        Exception: the last failure to start, once the budget is spent or ``stop`` is set.
    """
    while True:
        try:
            return start_query(spark, settings, job, available_now)
        except Exception as exc:
            if not budget.wait(job.name, exc, stop):
                raise


def _run_continuously(spark: SparkSession, settings: Settings, jobs: Sequence[Job],
                      queries: list[StreamingQuery], budget: OutageBudget,
                      stop: threading.Event, poll: Callable[[], object]) -> None:
    """Wait until ``stop`` is set or a query ends; queries that failed because the S3
    endpoint could not be reached start again from their checkpoints (``queries`` is updated
    in place) while the :class:`OutageBudget` lasts; any other end returns."""
    while not stop.is_set():
        _await(partial(_any_terminated, spark), stop, poll)
        failed = [(job.name, q) for job, q in zip(jobs, queries, strict=True) if not q.isActive]
        if stop.is_set() or not _restart_after_outage(failed, budget, stop):
            return
        poll()
        spark.streams.resetTerminated()
        for index, (job, query) in enumerate(zip(jobs, queries, strict=True)):
            if not query.isActive:
                queries[index] = _start_when_reachable(spark, settings, job, False, budget,
                                                       stop)


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


def _any_terminated(spark: SparkSession) -> bool:
    """Whether a query of ``spark`` ended (waits up to a second); a failure is not raised
    here but read from the query (:func:`_raise_failure`)."""
    try:
        return bool(spark.streams.awaitAnyTermination(1))
    except StreamingQueryException:
        return True


def _terminated(query: StreamingQuery) -> bool:
    """Whether ``query`` ended (waits up to a second); a failure is read from the query."""
    try:
        return bool(query.awaitTermination(1))
    except StreamingQueryException:
        return True


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
