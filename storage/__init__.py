"""The ground floor: every read and write of a registered Delta table goes through here.

* :mod:`storage.delta`: open and read tables (filters pushed down where delta-rs can), the
  table version and change data feed of a path, the files of a snapshot for Spark.
* :mod:`storage.sink`: :class:`~storage.sink.DeltaSink`, exactly-once micro-batch appends and
  MERGEs with Delta app transactions.
* :mod:`storage.facts`: cheap table facts from the Delta log (version, rows, files) and the
  lake's reconciliation, for ``ticklake status`` and the dashboard.
* :mod:`storage.maintenance`: compaction, log checkpoints, vacuum.

No module outside this package constructs a ``DeltaTable`` or calls ``write_deltalake``.
"""

from storage.delta import ensure_table, open_table, read_table
from storage.sink import DeltaSink

__all__ = ["DeltaSink", "ensure_table", "open_table", "read_table"]
