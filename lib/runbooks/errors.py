"""Errors that a runbook raises on purpose, and that the runner records as ``refused`` (exit code 2).

A runbook validates its inputs before it changes anything. When a parameter's value is unusable
(an unknown hostname, a malformed time, a value out of range), it raises :class:`BadParameter`, whose
message names the parameter, says what is wrong and how to fix it. ``runbooks.guard_apply`` raises
``ApplyRefused`` (a subclass of :class:`Refused`) when a destructive step is not authorised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection


class Refused(RuntimeError):
    """The run refused to go on; nothing was changed. The runner records it as ``refused`` (exit 2)."""


def _allowed(value: object, allowed: Collection[object] | None) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):  # nothing (or blanks): nothing to hide
        return True
    if allowed is None:
        return False
    with contextlib.suppress(TypeError):  # an unhashable value is not in a set of allowed values
        return value in allowed
    return False


def _withhold(name: str, value: object) -> None:
    """Tell the redactor (and, under the runner, the runner) that ``value`` of ``name`` was refused."""
    from runbooks import secrets

    with contextlib.suppress(Exception):  # a refusal must stay a refusal, even if the channel is gone
        secrets.withhold(name, str(value))


class BadParameter(Refused, ValueError):
    """A parameter's value is unusable. ``str(e)`` reads ``name (value not shown): problem; fix``.

    A refused value may be a pasted secret, so it follows the runner's rule for parameters: it is repeated
    (``name='value': problem; fix``) only when it is blank or one of ``allowed``, a closed set of valid values
    (e.g. ``colour=rollback`` refused because there is nothing to roll back to). Otherwise, under the runner,
    the record holds the name with ``[not recorded]`` and the value is scrubbed from the notebook
    (docs/REDACTION.md)."""

    def __init__(
        self, name: str, value: object, problem: str, fix: str, *, allowed: Collection[object] | None = None
    ) -> None:
        self.name, self.value, self.problem, self.fix = name, value, problem, fix
        if _allowed(value, allowed):
            super().__init__(f"{name}={value!r}: {problem}; {fix}")
        else:
            super().__init__(f"{name} (value not shown): {problem}; {fix}")
            _withhold(name, value)


#: exception names (as the kernel reports them) that the runner maps to ``refused``
REFUSAL_NAMES = frozenset({"Refused", "BadParameter", "ApplyRefused"})
