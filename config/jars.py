"""JVM jars from Maven Central, resolved once at set-up and run offline afterwards.

A *bundle* is a pinned dependency list (``config/maven/<name>.pom.xml``) and the SHA-256 of
every jar it resolves to (``config/maven/<name>.sha256``). :func:`resolve` runs Maven once
(``dependency:copy-dependencies``, strict checksums against the repository) into
``<jars_dir>/<name>-<version>/`` and then checks every jar against the committed SHA-256 list;
:func:`require` is what run-time code calls: it only looks at the folder and, when a jar is
missing, says how to get it. Nothing downloads at run time.

``python -m config.jars`` (run by ``make setup``) resolves every bundle and writes the
Spark settings that load the connectors into the venv's ``spark-defaults.conf``
(:func:`write_spark_defaults`), so a plain ``spark-submit`` finds them; ``--help`` lists the
bundles.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from config.errors import DependencyError
from config.runtime import exit_on_error, require_java

log = logging.getLogger(__name__)

MAVEN_DIR = Path(__file__).resolve().parent / "maven"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@dataclass(frozen=True)
class JarBundle:
    """One pinned set of jars: ``<name>.pom.xml`` and ``<name>.sha256`` under ``maven/``."""

    name: str

    @property
    def pom(self) -> Path:
        return MAVEN_DIR / f"{self.name}.pom.xml"

    @property
    def version(self) -> str:
        """The ``<version>`` of the bundle's pom (the version of its main artifact)."""
        node = ET.parse(self.pom).getroot().find("m:version", _POM_NS)
        if node is None or not node.text:
            raise DependencyError(f"{self.pom} has no <version>")
        return node.text.strip()

    def checksums(self) -> dict[str, str]:
        """Jar file name -> expected SHA-256 (hex), from ``<name>.sha256``."""
        pairs = (line.split() for line in
                 (MAVEN_DIR / f"{self.name}.sha256").read_text().splitlines() if line.strip())
        return {name: digest for digest, name in pairs}

    def directory(self, jars_dir: Path) -> Path:
        return jars_dir / f"{self.name}-{self.version}"

    def classpath(self, jars_dir: Path) -> str:
        """A JVM ``-cp`` value: every jar of the bundle, ``:``-separated, in name order."""
        folder = self.directory(jars_dir)
        return ":".join(str(folder / name) for name in sorted(self.checksums()))


KAFKA_BROKER = JarBundle("kafka-broker")
"""Apache Kafka's broker (:mod:`ticklake.broker`)."""
SPARK_CONNECTORS = JarBundle("spark-connectors")
"""Spark's Kafka source (``spark-sql-kafka-0-10``) and Delta Lake on Spark (``delta-spark``)
for pyspark's Spark version, without the jars pyspark ships."""
HADOOP_AWS = JarBundle("hadoop-aws")
"""Hadoop's S3 connector (S3A, ``hadoop-aws``) for pyspark's Hadoop, and the AWS SDK: Spark's
``s3://`` and ``s3a://`` paths (an S3 lake, :mod:`config.location`)."""
BUNDLES = (KAFKA_BROKER, SPARK_CONNECTORS, HADOOP_AWS)

DELTA_SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
"""The two static Spark settings Delta Lake's quick-start gives for a SparkSession with Delta
(its SQL extension and its catalog); they must be set before the session starts."""
SPARK_PACKAGES = ("org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0,"
                  "io.delta:delta-spark_4.2_2.13:4.4.0,org.apache.hadoop:hadoop-aws:3.5.0")
"""The same connectors as ``spark-submit --packages`` coordinates, for a cluster whose Spark
was not set up by ``make setup`` (Spark 4.2, Scala 2.13, Hadoop 3.5)."""
S3_SESSION_CONF = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
"""``s3://`` paths served by Hadoop's S3A, as ``s3a://`` are: the lake's URI is the same for
Spark and delta-rs (:mod:`config.location`)."""
SPARK_DEFAULTS_HEADER = "# ticklake's connectors, written by `python -m config.jars`"


def connector_conf(jars_dir: Path) -> dict[str, str]:
    """The Spark settings that load the connectors: ``spark.jars`` (:data:`SPARK_CONNECTORS`'
    jars, by absolute path, comma-separated), :data:`DELTA_SESSION_CONF`, and
    :data:`HADOOP_AWS` on ``spark.driver.extraClassPath`` and ``spark.executor.extraClassPath``
    (by local path: a worker reads them from its own disk rather than fetching ~690 MB from
    the driver) with :data:`S3_SESSION_CONF`. Java is not needed to build them (an image's
    build stage writes them); Spark checks for it when it starts.

    Raises:
        DependencyError: a jar is missing (:func:`require_jars`).
    """
    jars = require_jars(SPARK_CONNECTORS, jars_dir).replace(":", ",")
    s3 = require_jars(HADOOP_AWS, jars_dir)
    return {"spark.jars": jars, **DELTA_SESSION_CONF, "spark.driver.extraClassPath": s3,
            "spark.executor.extraClassPath": s3, **S3_SESSION_CONF}


def spark_defaults_path() -> Path:
    """``conf/spark-defaults.conf`` of the Spark that pyspark runs (``SPARK_HOME``, else the
    pyspark package); spark-submit reads it unless ``SPARK_CONF_DIR`` names another folder."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "conf" / "spark-defaults.conf"


def write_spark_defaults(jars_dir: Path, path: Path | None = None) -> Path:
    """Set :func:`connector_conf`'s settings in ``spark-defaults.conf`` (default
    :func:`spark_defaults_path`), keeping every other line of the file.

    Returns:
        The file written.

    Raises:
        DependencyError: a jar is missing (:func:`require_jars`).
    """
    conf = connector_conf(jars_dir)
    path = path or spark_defaults_path()
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            key = line.split(None, 1)[0] if line.strip() else ""
            if key not in conf and line != SPARK_DEFAULTS_HEADER:
                kept.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [*kept, SPARK_DEFAULTS_HEADER, *(f"{key} {value}" for key, value in conf.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def problems(bundle: JarBundle, jars_dir: Path) -> list[str]:
    """What is wrong with the bundle's folder: missing jars, jars whose SHA-256 differs."""
    folder = bundle.directory(jars_dir)
    found = []
    for name, expected in sorted(bundle.checksums().items()):
        jar = folder / name
        if not jar.is_file():
            found.append(f"{name} is missing")
        elif (actual := sha256(jar)) != expected:
            found.append(f"{name} has SHA-256 {actual}, expected {expected}")
    return found


def require(bundle: JarBundle, jars_dir: Path) -> str:
    """The bundle's classpath, if Java and every jar are there (names only: no hashing at run
    time).

    Raises:
        DependencyError: Java or a jar is missing; the message says how to get it.
    """
    require_java(f"{bundle.name} {bundle.version}")
    return require_jars(bundle, jars_dir)


def require_jars(bundle: JarBundle, jars_dir: Path) -> str:
    """The bundle's classpath, if every jar is there (names only; Java is not looked for).

    Raises:
        DependencyError: a jar is missing; the message says how to get it.
    """
    folder = bundle.directory(jars_dir)
    missing = [n for n in bundle.checksums() if not (folder / n).is_file()]
    if missing:
        raise DependencyError(
            f"{len(missing)} jar(s) of {bundle.name} {bundle.version} are missing from {folder} "
            f"(first: {missing[0]}): run `make setup` (or `python -m config.jars`), which "
            "resolves them from Maven Central once")
    return bundle.classpath(jars_dir)


def resolve(bundle: JarBundle, jars_dir: Path) -> Path:
    """Copy the bundle's jars from Maven Central (through ``~/.m2``) unless they are there and
    match their SHA-256, then check them.

    Returns:
        The bundle's folder.

    Raises:
        DependencyError: Maven is missing or fails, or a jar's SHA-256 differs from the
            committed list (the message names the jar).
    """
    folder = bundle.directory(jars_dir)
    if folder.is_dir() and not problems(bundle, jars_dir):
        return folder
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DependencyError("Maven (`mvn`) is not on PATH: run `make setup` (it installs the "
                              "Debian package maven) or install Apache Maven 3.8+")
    log.info("resolving %s %s from Maven Central into %s", bundle.name, bundle.version, folder)
    jars_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}-", dir=jars_dir))
    try:
        cmd = [mvn, "-q", "-B", "--strict-checksums", "-f", str(bundle.pom),
               f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={staging}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DependencyError(f"Maven could not resolve {bundle.name} "
                                  f"(exit {done.returncode}):\n{tail}")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wrong = problems(bundle, jars_dir)
    extra = sorted({p.name for p in folder.glob("*.jar")} - set(bundle.checksums()))
    if wrong or extra:
        raise DependencyError(f"{bundle.name} in {folder} does not match "
                              f"{bundle.name}.sha256: " + "; ".join(wrong + [
                                  f"{name} is not in the list" for name in extra]))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m config.jars",
        description="Resolve ticklake's pinned JVM jars from Maven Central once (through "
        "~/.m2), check their SHA-256 and set the connectors in pyspark's spark-defaults.conf. "
        "Bundles: " + ", ".join(
            f"{b.name} {b.version}" for b in BUNDLES) + ".")
    parser.add_argument("--jars-dir", type=Path, default=None,
                        help="where the bundles go (default: TICKLAKE_JARS_DIR, else .jars/ in "
                        "the repository)")
    parser.add_argument("--check", action="store_true",
                        help="only check the jars that are there against their SHA-256 (no "
                        "Maven; spark-defaults.conf is still written); exit 2 on a missing or "
                        "different jar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from config.settings import load_settings

    jars_dir = args.jars_dir or load_settings().jars_dir

    def check_or_resolve() -> None:
        for bundle in BUNDLES:
            if args.check:
                wrong = problems(bundle, jars_dir)
                if wrong:
                    raise DependencyError(f"{bundle.name} in {bundle.directory(jars_dir)}: "
                                          + "; ".join(wrong))
            folder = bundle.directory(jars_dir) if args.check else resolve(bundle, jars_dir)
            print(f"{bundle.name} {bundle.version}: {len(bundle.checksums())} jars, SHA-256 "
                  f"checked, in {folder}")
        path = write_spark_defaults(jars_dir)
        print(f"spark-submit loads the connectors: {', '.join(connector_conf(jars_dir))} in "
              f"{path}")

    exit_on_error(check_or_resolve)


if __name__ == "__main__":
    main()
