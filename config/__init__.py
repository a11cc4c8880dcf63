"""Settings and the table registry: the project's contracts, defined once."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
