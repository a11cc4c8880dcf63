"""ticklake's exceptions: one base class, small subclasses named for what went wrong."""


class TicklakeError(Exception):
    """Base class of every error ticklake raises on purpose."""


class ConfigError(TicklakeError):
    """A setting or CLI argument is out of its allowed range (the message names both)."""


class DependencyError(TicklakeError):
    """Something ticklake needs is missing (Java, a broker); the message says how to get it."""


class BrokerUnavailable(DependencyError):
    """No Kafka broker answers at the configured bootstrap servers."""


class AlreadyRunning(TicklakeError):
    """A job or service holds the lock on the same lake/checkpoint already."""


class SourceError(TicklakeError):
    """A tick source cannot read its input (missing file, unknown layout, no rows)."""


class DeliveryError(TicklakeError):
    """The Kafka producer could not deliver some messages (the message says how many)."""
