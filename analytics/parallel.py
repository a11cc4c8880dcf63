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


def run_in_processes(
    worker: Callable[[Job, Any], Result], jobs: Sequence[Job], workers: int, threads: int,
    bars: ProgressBars,
) -> list[Result]:
    """Run ``worker(job, events)`` for every job in ``workers`` spawned processes.

    Args:
        worker: a module-level function (it is pickled); it puts :data:`ProgressEvent` tuples
            on ``events`` as it goes.
        jobs: one per ticker.
        workers: processes (at most ``len(jobs)`` are started).
        threads: TensorFlow threads per process.
        bars: updated from the workers' events.

    Returns:
        The results in the order of ``jobs``.
    """
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        events = manager.Queue()
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    bars.update(*events.get(timeout=0.2))
                except queue.Empty:
                    continue

        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                     initializer=init_tensorflow,
                                     initargs=(threads,)) as pool:
                futures = [pool.submit(worker, job, events) for job in jobs]
                return [f.result() for f in futures]
        finally:
            stop.set()
            pumper.join()
