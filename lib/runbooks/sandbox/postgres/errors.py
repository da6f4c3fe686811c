"""The one error of the twin's PostgreSQL."""

from __future__ import annotations


class PostgresError(RuntimeError):
    """The twin's server could not be prepared, backed up or recovered."""
