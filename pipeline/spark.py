"""The SparkSession of ticklake's jobs: UTC, Python workers on our interpreter, connectors
(Spark's Kafka source and delta-spark from :data:`config.jars.SPARK_CONNECTORS`, and
ticklake's own Delta source while Silver and Gold still use it)."""

from __future__ import annotations

import logging
import warnings

from pyspark.sql import SparkSession

from config.errors import DependencyError
from config.jars import DELTA_SESSION_CONF, SPARK_PACKAGES, connector_conf
from config.location import describe, is_object_store, spark_s3_conf
from config.runtime import launched_by_spark_submit, prepare_spark_environment, require_java
from config.settings import Settings

log = logging.getLogger(__name__)

UI_RETENTION = {
    "spark.ui.retainedJobs": "200",
    "spark.ui.retainedStages": "200",
    "spark.ui.retainedTasks": "20000",
    "spark.sql.ui.retainedExecutions": "100",
    "spark.ui.dagGraph.retainedRootRDDs": "200",
}
"""What the driver keeps of finished work for the UI and the status API. Spark's defaults
(1,000 jobs, 1,000 stages, 1,000 SQL executions, 100,000 tasks, every root RDD's DAG) suit a
batch application; a streaming job runs a few jobs per micro-batch for days, and with those
defaults the driver holds ~200 live micro-batches' worth before it forgets any. A ``--conf``
given to ``spark-submit`` wins over these. (With them the live job's heap does not grow over
a 10-minute run: docs/benchmarks.md, "Live latency".)"""


DELTA_TUNING = {"spark.databricks.delta.snapshotPartitions": "1"}
"""delta-spark settings for ticklake's small Delta logs, unless ``spark-submit --conf`` gives
them: Delta rebuilds a table's snapshot state in a Spark job of ``snapshotPartitions`` tasks
(default 50); with 1 an append of a micro-batch no longer spends seconds in 50 tasks' code
generation (docs/architecture.md, "Measured facts")."""


def submitted_conf() -> dict[str, str]:
    """The Spark settings ``spark-submit`` (its ``--master``, ``--conf`` and
    ``spark-defaults.conf``) gave; empty for a plain ``python`` process.

    Under spark-submit the Python driver starts after the JVM, whose system properties hold
    them; a plain ``python`` process has none.
    """
    from pyspark import SparkConf, SparkContext

    if not launched_by_spark_submit():
        return {}
    SparkContext._ensure_initialized()  # connect to spark-submit's JVM, whose properties hold it
    return dict(SparkConf().getAll())


def driver_jvm_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of the driver JVM a job starts itself (not under spark-submit, whose
    JVM runs before this code): ``spark.driver.memory`` and, with ``spark_driver_pretouch``,
    ``-Xms`` equal to it and ``-XX:+AlwaysPreTouch`` in ``spark.driver.extraJavaOptions``
    (HotSpot's flags: the initial heap size, and touching every page of the heap when the JVM
    starts), followed by ``spark_driver_java_options``.

    With the heap committed and touched at start, the JVM's resident size stays at the heap
    plus its off-heap memory; without it, it grows under load while the heap's committed size
    expands toward its limit though the live objects do not (docs/architecture.md, "Measured
    facts").
    """
    conf = {"spark.driver.memory": settings.spark_driver_memory}
    options = [f"-Xms{settings.spark_driver_memory}", "-XX:+AlwaysPreTouch"
               ] if settings.spark_driver_pretouch else []
    options += settings.spark_driver_java_options.split()
    if options:
        conf["spark.driver.extraJavaOptions"] = " ".join(options)
    return conf


def spark_session(settings: Settings, app_name: str = "ticklake") -> SparkSession:
    """Get or create the SparkSession with Spark's Kafka source and Delta Lake (delta-spark).

    Session time zone is UTC; ``s3://`` and ``s3a://`` paths go through Hadoop's S3A with the
    endpoint and region of the AWS variables (:func:`config.location.spark_s3_conf`); Python
    workers run ``settings.pyspark_python`` (without it they
    start with the system Python and fail: docs/architecture.md, "Measured facts"). A process
    that starts its own JVM loads the connectors' jars from ``settings.jars_dir``
    (:func:`config.jars.connector_conf`); under spark-submit they come from its
    ``spark-defaults.conf`` (written by ``make setup``), ``--jars`` or ``--packages``.

    Raises:
        DependencyError: Java is missing or too old, or the connectors' jars are missing
            (the message says how to get them).
    """
    require_java("Spark 4")
    prepare_spark_environment(settings)
    # pyspark 4.2 warns on pandas 3; ticklake's Spark code paths use Arrow, not pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    builder = SparkSession.builder.appName(app_name)
    submitted = submitted_conf()
    given = submitted.get("spark.master")
    if given is None:  # builder.master() would override spark-submit --master
        builder = builder.master(settings.spark_master)
    for key, value in {**UI_RETENTION, **DELTA_TUNING, **spark_s3_conf()}.items():
        if key not in submitted:  # builder.config() would override spark-submit --conf
            builder = builder.config(key, value)
    if not launched_by_spark_submit():  # this process starts the JVM: its options still apply
        for key, value in {**driver_jvm_conf(settings),
                           **connector_conf(settings.jars_dir)}.items():
            builder = builder.config(key, value)
    else:
        for key, value in DELTA_SESSION_CONF.items():  # static SQL settings: before the session
            if key not in submitted:
                builder = builder.config(key, value)
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.pyspark.python", settings.pyspark_python)
        .config("spark.pyspark.driver.python", settings.pyspark_python)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", settings.spark_driver_bind_address)
        .config("spark.driver.host", settings.spark_driver_host)
        .config("spark.ui.enabled", str(settings.spark_ui_enabled).lower())
        .config("spark.ui.port", str(settings.spark_ui_port))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        # Parquet's TIMESTAMP(MICROS), not Spark's default INT96: delta-rs and pyarrow read it
        # as the tables' timestamp[us, UTC]
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    log.info("Spark %s on master %s (%s), UI %s", spark.version, spark.sparkContext.master,
             "from spark-submit" if given else "from the settings",
             spark.sparkContext.uiWebUrl or "off")
    if is_object_store(settings.lake_dir):
        log.info("lake %s: %s", settings.lake_dir, describe())
    spark.sparkContext.setLogLevel("WARN")
    require_connectors(spark)
    return spark


CONNECTOR_CLASSES = {
    "Spark's Kafka source": "org.apache.spark.sql.kafka010.KafkaSourceProvider",
    "delta-spark": "io.delta.sql.DeltaSparkSessionExtension",
}
"""A class of each connector, looked up in the driver to tell whether its jar is loaded."""


def require_connectors(spark: SparkSession) -> None:
    """Check that the driver can load Spark's Kafka source and delta-spark.

    Raises:
        DependencyError: a connector's jar is not on the classpath (e.g. a spark-submit whose
            Spark ``make setup`` did not configure); the message gives the ``--packages``
            line.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    loader = jvm.Thread.currentThread().getContextClassLoader()
    missing = []
    for name, cls in CONNECTOR_CLASSES.items():
        try:
            jvm.java.lang.Class.forName(cls, False, loader)
        except Exception:  # py4j raises Py4JJavaError (ClassNotFoundException)
            missing.append(name)
    if missing:
        raise DependencyError(
            f"{' and '.join(missing)} not on Spark's classpath: run `make setup` (it writes "
            "them into pyspark's spark-defaults.conf), or give spark-submit --packages "
            f"{SPARK_PACKAGES}")
