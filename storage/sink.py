"""Exactly-once Delta writes from Spark micro-batches, with delta-rs.

Each write records ``(app_id, batch_id)`` as a Delta *app transaction* in the same commit as
its rows (``CommitProperties(app_transactions=[Transaction(app_id, batch_id)])``, the
``txnAppId``/``txnVersion`` mechanism of the Delta protocol). delta-rs does not refuse an
older version, so :meth:`DeltaSink.committed` is checked first and a replayed micro-batch
(after a crash between the Delta commit and Spark's checkpoint commit) is skipped.

A commit that conflicts with a concurrent one (e.g. compaction by ``ticklake maintain``
rewriting the files a MERGE read) is retried up to 5 times with exponential back-off
(tenacity); before each retry the batch id is checked again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from config.errors import StorageError
from config.location import delta_storage_options, table_uri
from config.tables import Table
from storage.delta import conform, ensure_table

log = logging.getLogger(__name__)


FAULT_EXIT_CODE = 86
"""Exit code of a process ended by a fault point (``TICKLAKE_FAULT_AFTER_COMMIT``)."""


class DeltaSink:
    """Idempotent appends and upserts of micro-batches into one registered table.

    Args:
        table: the registered table (path, schema, keys).
        lake_dir: root of the lake.
        app_id: identifies the writing query; stored with every batch id it commits.
        exit_after_batch: a fault point for tests: end the process right after committing
            this batch id (``TICKLAKE_FAULT_AFTER_COMMIT``); None in normal operation.
        user_metadata: ``batch id -> text or None``: Delta's ``userMetadata`` of the commit
            of that batch (the streaming jobs record where their query stands,
            :func:`pipeline.checkpoints.replay_record`); None: none.
    """

    def __init__(self, table: Table, lake_dir: Path, app_id: str,
                 exit_after_batch: int | None = None,
                 user_metadata: Callable[[int], str | None] | None = None) -> None:
        self.table = table
        path = table.path(lake_dir)
        self.path = table_uri(path)
        self.storage_options = delta_storage_options(path)
        self.app_id = app_id
        self.exit_after_batch = exit_after_batch
        self.user_metadata = user_metadata
        self._delta = ensure_table(table, lake_dir)
        self._partition_columns: list[str] | None = None

    def _latest(self) -> DeltaTable:
        """The table at its newest version: the handle this sink keeps, brought up to date by
        reading only the commits since (others' too, e.g. compaction's), not the whole log."""
        self._delta.update_incremental()
        return self._delta

    def snapshot(self) -> DeltaTable:
        """The table at its newest version, to read from (:func:`storage.delta.read_table`'s
        ``delta``): cheaper than loading the table again."""
        return self._latest()

    def committed(self, batch_id: int | None) -> bool:
        """True if ``batch_id`` (or a later one) of this app is already in the table.

        A write without a batch id (``None``, batch jobs) is never considered committed.
        """
        if batch_id is None:
            return False
        version = self._latest().transaction_version(self.app_id)
        done = version is not None and version >= batch_id
        if done:
            log.info("%s: batch %d already committed (a replayed micro-batch), skipped",
                     self.table.name, batch_id)
        return done

    def metadata_of(self, batch_id: int | None) -> str | None:
        """Delta's ``userMetadata`` for the commit of ``batch_id`` (None: none)."""
        if batch_id is None or self.user_metadata is None:
            return None
        return self.user_metadata(batch_id)

    def _props(self, batch_id: int | None) -> CommitProperties | None:
        if batch_id is None:
            return None
        text = self.metadata_of(batch_id)
        return CommitProperties(app_transactions=[Transaction(self.app_id, batch_id)],
                                custom_metadata=None if text is None else {"userMetadata": text})

    def _commit_once(self, batch_id: int | None, commit: Callable[[], object]) -> bool:
        """Run ``commit`` unless ``batch_id`` is already in the table; retry lost races.

        ``commit`` may use ``self._delta`` as it is: it is brought up to date right before
        each attempt (by :meth:`committed`, or directly for a batch id of None)."""
        retrying = Retrying(
            retry=retry_if_exception_type(CommitFailedError),
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if self.committed(batch_id):
                    return False
                if batch_id is None:
                    self._latest()  # committed() had nothing to look up
                commit()
        self.after_commit(batch_id)
        return True

    def after_commit(self, batch_id: int | None) -> None:
        """Called right after ``batch_id`` was committed (by this sink or a Spark writer):
        the fault point, when ``exit_after_batch`` is this batch id."""
        if batch_id is not None and batch_id == self.exit_after_batch:
            self._fault(batch_id)

    def _fault(self, batch_id: int) -> None:
        """The fault point: end the process at once, right after this commit and before the
        micro-batch returns (so before Spark's checkpoint commit), as a crash would."""
        log.warning("fault point: exiting after committing %s batch %d", self.table.name,
                    batch_id)
        logging.shutdown()
        os._exit(FAULT_EXIT_CODE)

    def append(self, data: pa.Table, batch_id: int | None) -> bool:
        """Append ``data`` as batch ``batch_id``. Returns False if it was committed already.

        An empty batch is committed too (with no rows), so the batch id is recorded.
        """
        rows = conform(data, self.table.schema)
        return self._commit_once(batch_id, lambda: write_deltalake(
            self.path, rows, mode="append", commit_properties=self._props(batch_id),
            storage_options=self.storage_options))

    @property
    def partition_columns(self) -> list[str]:
        """The table's partition columns, as its metadata says (none for older tables); they
        never change, so they are read once."""
        if self._partition_columns is None:
            self._partition_columns = list(self._latest().metadata().partition_columns)
        return self._partition_columns

    def commit_files(self, records: Sequence[Mapping[str, Any]], batch_id: int | None) -> bool:
        """Commit data files that executors wrote (:func:`storage.files.write_data_files`) as
        one append of batch ``batch_id``, with the (app, batch id) app transaction.

        An empty ``records`` commits no file but records the batch id. Returns False if the
        batch was committed already (the files of this attempt are then left unreferenced and
        vacuum removes them).
        """
        actions: list[AddAction | RemoveAction] = [
            AddAction(r["path"], int(r["size"]), json.loads(r["partition_values"]),
                      int(r["modification_time"]), True, r["stats"])
            for r in records
        ]
        partitions = self.partition_columns

        def commit() -> None:  # the handle committed() just brought up to date
            self._delta.create_write_transaction(
                actions, mode="append", schema=self.table.schema,
                partition_by=partitions or None, commit_properties=self._props(batch_id))

        return self._commit_once(batch_id, commit)

    def upsert(
        self, data: pa.Table, batch_id: int | None, delete_unmatched_where: str | None = None,
        updates: Mapping[str, str] | None = None,
    ) -> bool:
        """MERGE ``data`` on the table's keys (update all columns / insert), as ``batch_id``.

        Args:
            data: rows with the table's columns.
            batch_id: micro-batch id recorded with the commit (None: not recorded).
            delete_unmatched_where: also delete target rows matching this SQL predicate (on
                alias ``t``) that ``data`` does not contain, in the same commit; replaces a
                slice of the table, e.g. ``"t.ticker IN ('IBM')"``.
            updates: for matched rows, column -> SQL expression over ``t`` (stored) and ``s``
                (new) instead of replacing every column (e.g. combining partial aggregates).

        Returns False if the batch was committed already.

        Raises:
            StorageError: the table has no keys.
        """
        if not self.table.keys:
            raise StorageError(f"{self.table.name} has no keys to merge on")
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in self.table.keys)
        rows = conform(data, self.table.schema)

        def merge() -> None:  # the handle committed() just brought up to date
            merger = self._delta.merge(
                rows, predicate, source_alias="s", target_alias="t",
                commit_properties=self._props(batch_id))
            merger = (merger.when_matched_update(dict(updates)) if updates
                      else merger.when_matched_update_all()).when_not_matched_insert_all()
            if delete_unmatched_where:
                merger = merger.when_not_matched_by_source_delete(delete_unmatched_where)
            merger.execute()

        return self._commit_once(batch_id, merge)
