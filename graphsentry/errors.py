"""User-facing errors (printed without a traceback by the CLI)."""


class GraphsentryError(Exception):
    """An error the user can fix (bad argument, unreachable service, invalid config)."""
