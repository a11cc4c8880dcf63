"""``python -m ticklake``: the same as the ``ticklake`` command."""

from ticklake.cli import main

main()
