"""Training tickers in parallel worker processes, with one progress bar per ticker.

On 2 cores, 2 processes x 1 TensorFlow thread train five tickers faster than one process
with TensorFlow's default threads (docs/architecture.md, "Measured facts").
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from typing import Any, TypeVar

from config.progress import progress
from config.runtime import import_tensorflow, pin_tensorflow_threads

log = logging.getLogger(__name__)
Job = TypeVar("Job")
Result = TypeVar("Result")
ProgressEvent = tuple[str, int, int, str]
"""``(ticker, epochs_done, epochs_total, stage)``."""


def init_tensorflow(threads: int) -> None:
    """Pin TensorFlow to ``threads`` threads in this process (before it is imported, if it can)."""
    pin_tensorflow_threads(threads)
    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its threads
        log.debug("TensorFlow already initialised; train_threads=%d not applied", threads)


class ProgressBars:
    """One progress bar per ticker on stderr (log lines when it is not a terminal:
    :func:`config.progress.progress`), fed by :data:`ProgressEvent` tuples."""

    def __init__(self, tickers: Sequence[str], enabled: bool) -> None:
        self.bars = {t: progress(f"train {t:<6}", 1, "epoch", enabled, log, position=i,
                                 leave=True) for i, t in enumerate(tickers)}

    def update(self, ticker: str, done: int, total: int, stage: str) -> None:
        """Show ``done`` of ``total`` epochs and the stage (e.g. ``fold 2/4``) for ``ticker``."""
        bar = self.bars[ticker]
        bar.total = total
        bar.n = done
        bar.set_postfix_str(stage, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _ready(barrier: Any) -> int:
    """Warm-up task: hold this worker until every worker holds one, so each takes one."""
    barrier.wait(timeout=120)
    return multiprocessing.current_process().pid or 0


class WorkerPool:
    """``workers`` spawned processes, each with TensorFlow imported and pinned to ``threads``
    threads (:func:`init_tensorflow`), plus the queue their progress events come back on.

    Use it as a context manager; :meth:`warm_up` starts every process now (else they start
    with the first jobs), :meth:`run` runs jobs on them.
    """

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = workers
        self.threads = threads
        self._stack = ExitStack()

    def __enter__(self) -> WorkerPool:
        ctx = multiprocessing.get_context("spawn")
        self.manager = self._stack.enter_context(ctx.Manager())
        self.events = self.manager.Queue()
        self.pool = self._stack.enter_context(ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=init_tensorflow,
            initargs=(self.threads,)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def warm_up(self) -> None:
        """Start every worker process and wait until each has imported TensorFlow."""
        # a submit that finds no idle worker spawns one; the barrier keeps a ready worker from
        # taking a second warm-up task, so every worker imports TensorFlow now
        barrier = self.manager.Barrier(self.workers)
        pids = {f.result() for f in [self.pool.submit(_ready, barrier)
                                     for _ in range(self.workers)]}
        log.info("%d training processes ready (TensorFlow imported)", len(pids))

    def run(self, worker: Callable[[Job, Any], Result], jobs: Sequence[Job],
            bars: ProgressBars) -> list[Result]:
        """Run ``worker(job, events)`` for every job; return the results in the order of
        ``jobs``. ``worker`` is a module-level function (it is pickled); it puts
        :data:`ProgressEvent` tuples on ``events``, which update ``bars``."""
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    bars.update(*self.events.get(timeout=0.2))
                except queue.Empty:
                    continue

        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()
        try:
            futures = [self.pool.submit(worker, job, self.events) for job in jobs]
            return [f.result() for f in futures]
        finally:
            stop.set()
            pumper.join()
