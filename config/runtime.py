"""The process environment: logging, environment variables of Spark and TensorFlow, and the
environment of child processes. Together with :mod:`config.settings`, the only module that
reads or writes ``os.environ``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

from config.errors import DependencyError, TicklakeError
from config.settings import Settings

log = logging.getLogger(__name__)
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
    # TensorFlow warns when a process traces several tf.functions of the same shape: the
    # prediction API and training trace one per served model on purpose
    # (analytics.lstm.compiled_inference)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


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


TENSORFLOW_IMPORT_NOISE = (
    "absl::InitializeLog", "cudart_stub", "cuInit", "cuda_platform", "cuda_executor",
    "cpu_feature_guard", "To enable the following instructions", "oneDNN custom operations",
    "rebuild TensorFlow with the appropriate compiler flags", "Unable to register cu",
)
"""Lines TensorFlow's C++ libraries print while they load on a machine without a GPU (absl
logs them before its log level is read, so TF_CPP_MIN_LOG_LEVEL does not hide them)."""


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ info lines (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow() -> ModuleType:
    """Import TensorFlow (and Keras) once, without the start-up noise of its C++ libraries.

    Whatever the import and the first listing of devices write to file descriptor 2 is
    captured; the lines of :data:`TENSORFLOW_IMPORT_NOISE` are dropped and every other line is
    written to stderr afterwards. Errors still raise as Python exceptions.

    Returns:
        The ``tensorflow`` module.
    """
    quiet_tensorflow()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports tensorflow, and its own start-up lines)
            import tensorflow

            # the platforms (CUDA's among them) load on the first look at the devices; the
            # runtime's threads are still free to set afterwards
            tensorflow.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not any(noise in line for noise in TENSORFLOW_IMPORT_NOISE):
                    print(line, file=sys.stderr)
    return sys.modules["tensorflow"]


def require_java(needed_by: str) -> None:
    """Raise :class:`~config.errors.DependencyError` with install instructions if no Java 17+
    is on PATH (Spark 4 and Apache Kafka 4 both need it); ``needed_by`` names who asks."""
    java = shutil.which("java")
    if java is None:
        raise DependencyError(
            f"{needed_by} needs Java 17 or newer and `java` is not on PATH: run `make setup` or "
            "`sudo apt-get install -y openjdk-17-jre-headless` (Debian/Ubuntu), or set JAVA_HOME"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        return
    if major < 17:
        raise DependencyError(f"{needed_by} needs Java 17+, found: {out.splitlines()[0]}")


def pin_tensorflow_threads(threads: int) -> None:
    """Ask TensorFlow and OpenMP for ``threads`` threads (call before TensorFlow is imported)."""
    quiet_tensorflow()
    for name in TENSORFLOW_THREAD_VARIABLES:
        os.environ[name] = str(threads)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, for a child process."""
    return {**os.environ, **(extra or {})}


def set_environment(values: Mapping[str, str]) -> None:
    """Set ``values`` in this process's environment, which every child started afterwards
    inherits (``ticklake up --local-s3``: the AWS variables of its endpoint)."""
    os.environ.update(values)


def wait_for_file(path: Path, stop: threading.Event | None = None, poll_s: float = 0.1) -> bool:
    """Block until ``path`` exists (True) or ``stop`` is set (False); polls every ``poll_s``
    seconds. ``ticklake up`` creates the file when the step before is done (``--start-after``).
    """
    stop = stop or threading.Event()
    while not path.exists():
        if stop.wait(poll_s):
            return False
    return True


def lower_cpu_priority(increment: int) -> None:
    """Lower this process's CPU priority (and its future children's) by ``increment`` nice
    levels, for good. On Linux with autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``)
    a process started in its own session competes as a group, so the group's nice value is
    raised too (``/proc/self/autogroup``; see sched(7)); elsewhere only ``os.nice`` applies.
    """
    os.nice(increment)
    autogroup = Path("/proc/self/autogroup")
    try:
        current = int(autogroup.read_text().split("nice")[1])
        autogroup.write_text(str(min(19, current + increment)))
    except (OSError, IndexError, ValueError):
        log.debug("no autogroup nice value to raise")
