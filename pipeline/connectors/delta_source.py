"""A Delta Lake streaming source for Spark over delta-rs (Python Data Source API).

Use it where delta-spark cannot be fetched. It streams the rows that each commit of a table
*added* (its change data feed: ``insert`` and, optionally, ``update_postimage``), so a table
must be created with ``delta.enableChangeDataFeed=true``. Compaction (OPTIMIZE) adds no change
rows, so maintenance never replays data::

    spark.dataSource.register(DeltaDataSource)
    (spark.readStream.format("ticklake-delta").schema(schema)
        .option("maxFilesPerTrigger", 16)          # admission control, Spark's option names
        .load("/lake/silver/ticks"))

Offsets are ``{"version": v}``: every commit up to table version ``v`` has been read. A table
that does not exist yet has version -1 and yields nothing until it is created.

The files of commits that only appended (the usual streaming append) are read straight from
Parquet (such a commit's change feed is exactly those files' rows), packed into tasks as
Spark's file sources pack them (:func:`pack_files`): many small files of a live stream make
one task, a backlog's big files at least ``minPartitions``. Other commits (MERGE, deletes)
are read through delta-rs' change data feed, one task per commit.

Options:

* ``startingVersion`` (default 0);
* ``changeTypes`` (default ``insert``; also ``update_postimage``, ``update_preimage``,
  ``delete``);
* ``maxFilesPerTrigger`` / ``maxBytesPerTrigger``: a micro-batch takes whole commits while
  their added files (or bytes) stay within the limit, and at least one commit, as Spark's
  Delta source does. Without either, a micro-batch takes every new commit.
* ``minPartitions`` (default 1; the jobs pass Spark's default parallelism) and
  ``maxPartitionBytes`` (default 128 MiB, Spark's ``spark.sql.files.maxPartitionBytes``): how
  appended files are packed into tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxBytes,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from config.errors import ConnectorError
from storage.delta import CommitFiles, commit_files, conform, read_data_file, table_changes, table_version

VersionOffset = dict[str, int]
"""``{"version": v}``: every commit up to table version ``v`` has been read."""
CHANGE_TYPES = ("insert", "update_postimage", "update_preimage", "delete")


class DeltaSourceError(ConnectorError):
    """The Delta source cannot go on (no schema, bad option)."""


@dataclass(frozen=True)
class DeltaVersionRange(InputPartition):
    """One Spark task: the change feed of commits ``first_version..last_version``."""

    path: str
    first_version: int
    last_version: int
    change_types: tuple[str, ...]


PartitionValues = tuple[tuple[str, str | None], ...]
DataFileRef = tuple[str, PartitionValues]
"""A data file of the table: (path relative to the table root, partition values)."""
AddedFile = tuple[str, int, PartitionValues]
"""A file a commit added: (relative path, size in bytes, partition values), as in
:attr:`storage.delta.CommitFiles.added`."""


@dataclass(frozen=True)
class DeltaDataFiles(InputPartition):
    """One Spark task: the rows of files plain-append commits added (all ``insert``)."""

    path: str
    files: tuple[DataFileRef, ...]


OPEN_COST_BYTES = 4 * 2**20
"""What opening a file is counted as when files are packed into tasks (Spark's
``spark.sql.files.openCostInBytes``)."""


def pack_files(
    files: list[AddedFile], min_partitions: int,
    max_partition_bytes: int,
) -> list[tuple[DataFileRef, ...]]:
    """Group data files into tasks as Spark's file sources do (``FilePartition``): a task
    holds up to ``min(max_partition_bytes, max(open cost, total / min_partitions))`` bytes,
    each file counted with :data:`OPEN_COST_BYTES` more; largest files first, next fit.

    So a micro-batch of many small files (a live stream's) is one or a few tasks, and a
    backlog's big files are spread over at least ``min_partitions`` tasks when there are as
    many files.
    """
    total = sum(size + OPEN_COST_BYTES for _, size, _ in files)
    target = min(max_partition_bytes, max(OPEN_COST_BYTES, total // max(min_partitions, 1)))
    groups: list[list[DataFileRef]] = []
    used = 0
    for relative, size, parts in sorted(files, key=lambda f: -f[1]):
        cost = size + OPEN_COST_BYTES
        if not groups or used + cost > target:
            groups.append([])
            used = 0
        groups[-1].append((relative, parts))
        used += cost
    return [tuple(group) for group in groups]


def _positive(options: Mapping[str, str], name: str) -> int | None:
    text = options.get(name)
    if text is None:
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise DeltaSourceError(f"{name}={text!r} must be an integer >= 1")
    return value


class DeltaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans commits and files on the driver; reads them on the executors."""

    def __init__(self, path: str, schema: StructType, options: Mapping[str, str]) -> None:
        self.path = path
        self.schema = schema
        self.starting_version = int(options.get("startingVersion", "0"))
        self.change_types = tuple(
            c.strip() for c in options.get("changeTypes", "insert").split(",") if c.strip()
        )
        if not self.change_types or set(self.change_types) - set(CHANGE_TYPES):
            raise DeltaSourceError(
                f"changeTypes={options.get('changeTypes')!r}: choose from {sorted(CHANGE_TYPES)}"
            )
        self.max_files = _positive(options, "maxFilesPerTrigger")
        self.max_bytes = _positive(options, "maxBytesPerTrigger")
        self.min_partitions = _positive(options, "minPartitions") or 1
        self.max_partition_bytes = _positive(options, "maxPartitionBytes") or 128 * 2**20
        self._target: int | None = None
        self._commits: dict[int, CommitFiles] = {}

    def _commit(self, version: int) -> CommitFiles:
        """The files ``version`` added, read from the log once (a commit never changes)."""
        if version not in self._commits:
            self._commits[version] = commit_files(self.path, version)
        return self._commits[version]

    def initialOffset(self) -> VersionOffset:
        return {"version": self.starting_version - 1}

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.max_files:
            return ReadMaxFiles(self.max_files)
        if self.max_bytes:
            return ReadMaxBytes(self.max_bytes)
        return ReadAllAvailable()

    def latestOffset(self, start: VersionOffset, limit: ReadLimit) -> VersionOffset:
        done = start["version"] if start else self.starting_version - 1
        latest = table_version(self.path)
        if self._target is not None:
            latest = min(latest, self._target)
        if latest <= done:
            return {"version": done}
        if isinstance(limit, ReadMaxFiles | ReadMaxBytes):
            latest = self._admit(done, latest, limit)
        return {"version": latest}

    def _admit(self, done: int, latest: int, limit: ReadMaxFiles | ReadMaxBytes) -> int:
        """The last version to read so that the added files (bytes) stay within ``limit``;
        at least one commit, so the query always moves."""
        budget = limit.max_files if isinstance(limit, ReadMaxFiles) else limit.max_bytes
        used = 0
        end = done
        for version in range(max(done + 1, 0), latest + 1):
            commit = self._commit(version)
            cost = commit.files if isinstance(limit, ReadMaxFiles) else commit.bytes
            if end > done and used + cost > budget:
                break
            used += cost
            end = version
        return end

    def reportLatestOffset(self) -> VersionOffset:
        return {"version": table_version(self.path)}

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = table_version(self.path)

    def partitions(
        self, start: VersionOffset, end: VersionOffset
    ) -> list[DeltaVersionRange | DeltaDataFiles]:
        first, last = max(start["version"] + 1, 0), end["version"]
        plans: list[DeltaVersionRange | DeltaDataFiles] = []
        appended: list[AddedFile] = []
        for version in range(first, last + 1):
            commit = self._commit(version)
            if commit.plain_append:
                if "insert" in self.change_types:
                    appended.extend(commit.added)
            else:
                plans.append(DeltaVersionRange(self.path, version, version, self.change_types))
        plans.extend(DeltaDataFiles(self.path, group) for group in
                     pack_files(appended, self.min_partitions, self.max_partition_bytes))
        return plans

    def read(  # type: ignore[override]
        self, partition: DeltaVersionRange | DeltaDataFiles
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        target = to_arrow_schema(self.schema, timezone="UTC")
        if isinstance(partition, DeltaDataFiles):
            for relative, parts in partition.files:
                yield from read_data_file(partition.path, relative, dict(parts),
                                          target).to_batches()
            return
        changes = table_changes(partition.path, partition.first_version, partition.last_version)
        kind = changes.column("_change_type").cast(pa.string())
        wanted = pc.is_in(kind, value_set=pa.array(list(partition.change_types)))
        # Cast first: Arrow has no filter kernel for the view types delta-rs may return.
        yield from conform(changes, target).filter(wanted).to_batches()

    def commit(self, end: VersionOffset) -> None:
        """Forget the file lists of the commits read; the table keeps its versions until it is
        vacuumed."""
        self._commits = {v: c for v, c in self._commits.items() if v > end["version"]}


class DeltaDataSource(DataSource):
    """Spark data source ``ticklake-delta`` (streaming read); pass the path to ``load()``."""

    @classmethod
    def name(cls) -> str:
        return "ticklake-delta"

    def schema(self) -> StructType:
        raise DeltaSourceError(
            "ticklake-delta needs the table schema: readStream.schema(...) (see config/tables.py)"
        )

    def streamReader(self, schema: StructType) -> DeltaStreamReader:
        path = self.options.get("path")
        if not path:
            raise DeltaSourceError("pass the table path: readStream...load(PATH)")
        return DeltaStreamReader(path, schema, self.options)
