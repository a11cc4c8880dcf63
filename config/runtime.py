"""The process environment: logging, environment variables of Spark and TensorFlow, and the
environment of child processes. Together with :mod:`config.settings`, the only module that
reads or writes ``os.environ``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

from config.errors import TicklakeError
from config.settings import Settings

NOISY_LOGGERS = ("py4j", "ticklake.librdkafka", "matplotlib", "PIL")
TENSORFLOW_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                               "OMP_NUM_THREADS")


def setup_logging(verbose: bool = False) -> None:
    """Log lines ``time LEVEL logger: message`` to stderr; chatty libraries at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # under spark-submit, pyspark has configured the root logger already
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def exit_on_error(entry_point: Callable[[], object]) -> None:
    """Run ``entry_point``; a :class:`~config.errors.TicklakeError` becomes one line on stderr
    (``error: ...``) and exit code 2, with no traceback."""
    try:
        entry_point()
    except TicklakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def prepare_spark_environment(settings: Settings) -> None:
    """Environment the Spark JVM reads when it starts Python workers.

    ``PYSPARK_PYTHON`` must name this venv's interpreter: Python workers (UDFs, data sources)
    are started by the JVM from this variable, the ``spark.pyspark.python`` conf alone does not
    reach the data source runners, and workers started with the system Python fail
    (docs/architecture.md, "Measured facts"). ``SPARK_LOCAL_IP`` keeps Spark on loopback.
    """
    os.environ["PYSPARK_PYTHON"] = settings.pyspark_python
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def launched_by_spark_submit() -> bool:
    """True in a Python driver that spark-submit started: its JVM is already running and told
    this process where (``PYSPARK_GATEWAY_PORT``); a plain ``python`` process starts its own."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ info lines (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pin_tensorflow_threads(threads: int) -> None:
    """Ask TensorFlow and OpenMP for ``threads`` threads (call before TensorFlow is imported)."""
    quiet_tensorflow()
    for name in TENSORFLOW_THREAD_VARIABLES:
        os.environ[name] = str(threads)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, for a child process."""
    return {**os.environ, **(extra or {})}

