"""``guard_apply``: the single gate in front of every destructive step.

A destructive notebook calls ``runbooks.guard_apply(apply, confirm, environment)`` right before its
first change. It raises :class:`ApplyRefused` unless ``apply`` is ``True`` and ``confirm`` equals the
target environment's name, so a dry run (the default) shows the plan and stops there. Otherwise it returns
an :class:`runbooks.plan.Authorisation` for the environment: a procedure's apply requires it
(:func:`runbooks.plan.require`), so no destructive change can be made without passing this gate.

The target environment must also be locked by this run, in the archive store (a file lock for a local
archive, a lease in the bucket for an S3 one; see :mod:`runbooks.archive.stores`):

- under the runner, a destructive notebook's lock is taken by the runner before the kernel starts and
  the runner tells the kernel which environment it holds (``RUNBOOKS_LOCKED_ENVIRONMENT``);
- in a kernel the runner started for a notebook it did not lock, ``guard_apply`` takes the lock itself for
  the rest of the run;
- in a kernel the runner did not start (JupyterLab), the apply becomes a run of its own
  (:mod:`runbooks.kernel.interactive`): the lock is taken under that run's id, every cell executed from then on is
  recorded, and the record is committed and the lock released when the apply ends (``runbooks.end_apply()``,
  a cell that raises, or kernel shutdown at the latest).

If another live run holds the lock, it refuses, naming it.
"""

from __future__ import annotations

import atexit
import os
import socket

from runbooks.channel import LOCKED_ENV, RUN_ID_ENV
from runbooks.errors import Refused
from runbooks.plan import Authorisation, authorise

_held: dict[str, object] = {}  # environment -> EnvironmentLock taken by this process


class ApplyRefused(Refused):
    """A destructive step was not authorised (dry run, missing confirmation, or locked environment)."""


def _actor() -> str:
    from runbooks.runner.identity import actor

    return actor()


def _take_lock(environment: str) -> None:
    """A runner-started kernel whose notebook the runner did not lock: hold the lock until the kernel exits."""
    if environment in _held:
        return
    from runbooks.archive import lock
    from runbooks.archive.stores import open_store

    run_id = os.environ.get(RUN_ID_ENV) or f"interactive-{socket.gethostname()}-{os.getpid()}"
    try:
        held = open_store(None, environment).acquire_lock(environment, run_id=run_id, actor=_actor())
    except lock.LockHeld as e:
        raise ApplyRefused(f"not applying: {e}") from None
    _held[environment] = held
    atexit.register(held.release)


def _confirm_shown(confirm: object) -> str:
    """``confirm='staging'`` for an environment's name; any other value may be a pasted secret: not repeated."""
    from runbooks.paths import known_environments

    if isinstance(confirm, str) and confirm in known_environments():
        return f"confirm={confirm!r}"
    return "confirm (the value given is not an environment's name, and is not repeated)"


def _begin_interactive(environment: str) -> None:
    from runbooks.archive import lock
    from runbooks.kernel import interactive

    try:
        interactive.begin(environment)
    except lock.LockHeld as e:
        raise ApplyRefused(f"not applying: {e}") from None


def guard_apply(apply: object, confirm: object, environment: str) -> Authorisation:
    """The authorisation to change ``environment`` if this run may; otherwise raise :class:`ApplyRefused`."""
    if not isinstance(environment, str) or not environment:
        raise ApplyRefused("not applying: no target environment given")
    if apply is not True:
        raise ApplyRefused(
            f"dry run: nothing was changed in {environment!r}. To apply, re-run with apply=True and "
            f"confirm={environment!r} (runbooks run ... --apply --confirm {environment})."
        )
    if confirm != environment:
        got = "no confirmation" if not confirm else _confirm_shown(confirm)
        raise ApplyRefused(
            f"not applying to {environment!r}: {got} does not name the target environment. "
            f"Say confirm={environment!r} (runbooks run ... --apply --confirm {environment})."
        )
    if os.environ.get(LOCKED_ENV) == environment:
        pass  # the runner took this environment's lock before the kernel started
    elif os.environ.get(RUN_ID_ENV):
        _take_lock(environment)
    else:
        _begin_interactive(environment)
    return authorise(environment)
