"""ticklake's exceptions: one base class, small subclasses named for what went wrong.

Every boundary (CLI arguments, settings, sources, storage, the model registry)
raises one of these, so the CLI turns any of them into one clear line and exit code 2.
"""


class TicklakeError(Exception):
    """Base class of every error ticklake raises on purpose."""


class ConfigError(TicklakeError):
    """A setting or CLI argument is out of its allowed range (the message names both)."""


class DependencyError(TicklakeError):
    """Something ticklake needs is missing (Java, a broker); the message says how to get it."""


class BrokerUnavailable(DependencyError):
    """No Kafka broker answers at the configured bootstrap servers."""


class BrokerAuthenticationFailed(BrokerUnavailable):
    """The broker answers but refuses the configured SASL credentials or TLS settings."""


class AlreadyRunning(TicklakeError):
    """A job or service holds the lock on the same lake/checkpoint already."""


class SourceError(TicklakeError):
    """A tick source cannot read its input (missing file, unknown layout, no rows)."""


class DeliveryError(TicklakeError):
    """The Kafka producer could not deliver some messages (the message says how many)."""


class StorageError(TicklakeError):
    """A Delta table cannot be read or written as asked (missing table, no merge keys)."""


class TableMissing(StorageError):
    """A table that the operation needs does not exist yet (the message says what makes it)."""


class ModelError(TicklakeError):
    """A registered model version is missing or cannot be loaded safely."""
