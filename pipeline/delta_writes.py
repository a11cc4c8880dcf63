"""Idempotent micro-batch writes with delta-spark (Delta Lake's own Spark writer).

The rows stay in Spark: the executors write the Parquet files and the driver commits them
through Delta's optimistic concurrency control, next to any other Delta writer of the table.
Each commit records the query's app transaction, Delta's ``txnAppId`` / ``txnVersion`` write
options (https://docs.delta.io/latest/delta-streaming.html#idempotent-table-writes-in-foreachbatch):
a micro-batch that Spark replays after a crash between the table's commit and its own
checkpoint is skipped.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from storage.sink import DeltaSink


def append_batch(frame: DataFrame, sink: DeltaSink, batch_id: int | None) -> bool:
    """Append ``frame``'s rows to ``sink``'s table as micro-batch ``batch_id``, once.

    The table exists already (:class:`~storage.sink.DeltaSink` creates it with its registered
    schema and properties); ``frame`` is cast to its columns. A batch the table holds already
    is skipped, with the sink's "already committed" log line; Delta itself skips it too, by
    its app transaction, should two writers race. The sink's fault point, if set, ends the
    process right after the commit.

    Args:
        frame: rows with (at least) the table's columns.
        sink: the table's exactly-once sink (its ``app_id`` is the ``txnAppId``).
        batch_id: the micro-batch id (``txnVersion``); None for a batch write (no app
            transaction, never skipped).

    Returns:
        False if the batch had been committed already.
    """
    if sink.committed(batch_id):
        return False
    columns = sink.table.schema.names
    writer = frame.select(*columns).write.format("delta").mode("append")
    if batch_id is not None:
        writer = writer.option("txnAppId", sink.app_id).option("txnVersion", batch_id)
    text = sink.metadata_of(batch_id)
    if text is not None:  # where the query stands (pipeline.checkpoints.replay_record)
        writer = writer.option("userMetadata", text)
    writer.save(sink.path)
    sink.after_commit(batch_id)
    return True
