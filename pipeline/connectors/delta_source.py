"""A Delta Lake streaming source for Spark over delta-rs (Python Data Source API).

Use it where delta-spark cannot be fetched. It streams the rows that each commit of a table
*added* (its change data feed: ``insert`` and, optionally, ``update_postimage``), so a table
must be created with ``delta.enableChangeDataFeed=true``. Compaction (OPTIMIZE) adds no change
rows, so maintenance never replays data::

    spark.dataSource.register(DeltaDataSource)
    spark.readStream.format("ticklake-delta").schema(schema).load("/lake/silver/ticks")

Offsets are ``{"version": v}``: every commit up to table version ``v`` has been read. A table
that does not exist yet has version -1 and yields nothing until it is created.
Options: ``startingVersion`` (default 0), ``changeTypes`` (default ``insert``),
``versionsPerPartition`` (commits read by one Spark task, default 64).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import ReadLimit, SupportsTriggerAvailableNow
from pyspark.sql.types import StructType

from config.errors import ConnectorError
from storage.delta import conform, table_changes, table_version

VersionOffset = dict[str, int]
"""``{"version": v}``: every commit up to table version ``v`` has been read."""


class DeltaSourceError(ConnectorError):
    """The Delta source cannot go on (no schema, bad option)."""


@dataclass(frozen=True)
class DeltaVersionRange(InputPartition):
    """One Spark task: the changes of commits ``first_version..last_version`` (inclusive)."""

    path: str
    first_version: int
    last_version: int
    change_types: tuple[str, ...]


class DeltaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans version ranges on the driver; reads them with delta-rs on the executors."""

    def __init__(self, path: str, schema: StructType, options: Mapping[str, str]) -> None:
        self.path = path
        self.schema = schema
        self.starting_version = int(options.get("startingVersion", "0"))
        self.change_types = tuple(
            c.strip() for c in options.get("changeTypes", "insert").split(",") if c.strip()
        )
        allowed = {"insert", "update_postimage", "update_preimage", "delete"}
        if not self.change_types or set(self.change_types) - allowed:
            raise DeltaSourceError(
                f"changeTypes={options.get('changeTypes')!r}: choose from {sorted(allowed)}"
            )
        self.versions_per_partition = int(options.get("versionsPerPartition", "64"))
        self._target: int | None = None

    def initialOffset(self) -> VersionOffset:
        return {"version": self.starting_version - 1}

    def latestOffset(self, start: VersionOffset, limit: ReadLimit) -> VersionOffset:
        latest = table_version(self.path)
        if self._target is not None:
            latest = min(latest, self._target)
        return {"version": max(latest, start["version"] if start else -1)}

    def reportLatestOffset(self) -> VersionOffset:
        return {"version": table_version(self.path)}

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = table_version(self.path)

    def partitions(self, start: VersionOffset, end: VersionOffset) -> list[DeltaVersionRange]:
        first, last = start["version"] + 1, end["version"]
        step = self.versions_per_partition
        return [
            DeltaVersionRange(self.path, v, min(v + step - 1, last), self.change_types)
            for v in range(max(first, 0), last + 1, step)
        ]

    def read(self, partition: DeltaVersionRange) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        import pyarrow.compute as pc

        target = to_arrow_schema(self.schema, timezone="UTC")
        changes = table_changes(partition.path, partition.first_version, partition.last_version)
        kind = changes.column("_change_type").cast(pa.string())
        wanted = pc.is_in(kind, value_set=pa.array(list(partition.change_types)))
        # Cast first: Arrow has no filter kernel for the view types delta-rs may return.
        yield from conform(changes, target).filter(wanted).to_batches()

    def commit(self, end: VersionOffset) -> None:
        """Nothing to do: the table keeps every version until it is vacuumed."""


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
