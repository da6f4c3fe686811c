"""Errors that a runbook raises on purpose, and that the runner records as ``refused`` (exit code 2).

A runbook validates its inputs before it changes anything. When a parameter's value is unusable
(an unknown hostname, a malformed time, a value out of range), it raises :class:`BadParameter`, whose
message names the parameter, says what is wrong and how to fix it. ``runbooks.guard_apply`` raises
``ApplyRefused`` (a subclass of :class:`Refused`) when a destructive step is not authorised; a
procedure's preflight that stops before any change raises its own subclass of ``runbooks.plan.UnsafePlan``
(``FlipRefused``, ``RotationRefused``, ...).

The runner recognises a refusal by its *class*, not its name: under the runner, importing this module
installs an IPython handler for :class:`Refused` in the kernel that tells the runner (through its private
channel, before the error is shown) that the exception a cell raised is a ``Refused``. A new refusal
therefore needs no registration, and an unrelated exception that happens to be called ``BadParameter``
is a failure, not a refusal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any

from runbooks import channel


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


#: the channel message a kernel sends when a cell raised a :class:`Refused` (see the module doc)
REFUSAL_MESSAGE = channel.REFUSED


def _report_refusal(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> Any:
    """IPython custom exception handler: tell the runner, then show the usual traceback (IPython leaves the
    display to the handler: the error output is the one ``showtraceback`` sends for any exception)."""
    with contextlib.suppress(channel.ChannelError, OSError):
        channel.send(
            REFUSAL_MESSAGE, name=etype.__name__, mro=[f"{c.__module__}.{c.__qualname__}" for c in etype.__mro__]
        )
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return None


def install_refusal_reporting() -> bool:
    """In a kernel started by the runner, report every uncaught :class:`Refused` to it; True if installed."""
    if not channel.under_runner():
        return False
    import sys

    ipython = sys.modules.get("IPython")  # only a kernel has it loaded; never import it here
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((Refused,), _report_refusal)
    return True


install_refusal_reporting()
