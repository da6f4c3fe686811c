"""Errors that a runbook raises on purpose, and that the runner records as ``refused`` (exit code 2).

A runbook validates its inputs before it changes anything. When a parameter's value is unusable
(an unknown hostname, a malformed time, a value out of range), it raises :class:`BadParameter`, whose
message names the parameter, says what is wrong and how to fix it. ``runbooks.guard_apply`` raises
``ApplyRefused`` (a subclass of :class:`Refused`) when a destructive step is not authorised.
"""

from __future__ import annotations


class Refused(RuntimeError):
    """The run refused to go on; nothing was changed. The runner records it as ``refused`` (exit 2)."""


class BadParameter(Refused, ValueError):
    """A parameter's value is unusable. ``str(e)`` reads ``name=value: problem; fix``."""

    def __init__(self, name: str, value: object, problem: str, fix: str):
        self.name, self.value, self.problem, self.fix = name, value, problem, fix
        super().__init__(f"{name}={value!r}: {problem}; {fix}")


#: exception names (as the kernel reports them) that the runner maps to ``refused``
REFUSAL_NAMES = frozenset({"Refused", "BadParameter", "ApplyRefused"})
