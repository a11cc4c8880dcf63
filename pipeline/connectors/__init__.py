"""A Spark Python data source for Delta Lake (no JVM connector needed), until the jobs read
with delta-spark.

The data source is imported on first use (PEP 562), so that importing this package does not
import PySpark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.connectors.delta_source import DeltaDataSource

__all__ = ["DeltaDataSource"]


def __getattr__(name: str) -> Any:
    if name == "DeltaDataSource":
        from pipeline.connectors.delta_source import DeltaDataSource

        return DeltaDataSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
