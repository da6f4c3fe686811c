"""The rotation's errors: a refusal before any change, and the test hook. A failure after changes began
(:class:`~runbooks.state.rotation.RotationFailed`, :class:`~runbooks.state.rotation.StateConflict`) is defined
with the state it leaves (:mod:`runbooks.state.rotation`)."""

from __future__ import annotations

from runbooks.plan import UnsafePlan


class RotationRefused(UnsafePlan):
    """Preflight failed: nothing was changed (``refused``, exit 2, under the runner)."""


class Interrupted(RuntimeError):
    """Raised by the test hook right after a step completed."""
