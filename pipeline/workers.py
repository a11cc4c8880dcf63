"""What ticklake's functions do once in each of the executors' Python worker processes.

PySpark's daemon reuses a Python worker for task after task (``spark.python.worker.reuse``,
on by default) and runs a full ``gc.collect()`` after each of them (``pyspark/daemon.py``).
A full collection walks every object the garbage collector tracks, and a worker that has
imported pyarrow, pandas and the pipeline holds about 100,000 of them, so each task pays a
full walk of them (what that cost is measured in docs/architecture.md, "Measured facts").

:func:`freeze_imports` moves what is alive when a worker first runs one of our functions (the
imported modules, their caches) to the collector's permanent generation (``gc.freeze``,
CPython 3.7+), which later collections skip; what tasks create afterwards is collected as
before.
"""

from __future__ import annotations

import gc

from pyspark import TaskContext

_frozen = False


def freeze_imports() -> None:
    """``gc.freeze()`` once per process (later calls do nothing), and only in a Spark task's
    Python worker (``TaskContext.get()`` is set there), never in a driver or test process.

    Call it at the start of a function Spark runs in a Python worker (a ``mapInArrow``
    function), after its module's imports and before the task's own data exists. Objects
    alive now are never collected afterwards, even if they become garbage: only the imports
    of the process should be, so this is done once and not per task.
    """
    global _frozen
    if not _frozen and TaskContext.get() is not None:  # None: not in a Spark task (a test)
        gc.collect()  # what the first task's unpickling left as garbage is not frozen
        gc.freeze()
        _frozen = True
