"""Plan and apply: the one contract of every destructive procedure (in the spirit of octoDNS's ``Plan``).

A destructive runbook reads the world, builds a plan, shows it, and changes something only once the gate
has authorised it:

    plan = procedure.plan(...)          # reads only; its preflight rows are part of the plan
    runbooks.show(...)                  # what will change, and the preflight
    plan.raise_if_unsafe()              # a failed preflight: UnsafePlan (a Refused: exit 2), nothing changed
    auth = runbooks.guard_apply(apply, confirm, environment)   # dry run / unconfirmed: ApplyRefused
    procedure.apply(plan, auth, ...)    # require(plan, auth) first: no apply without the gate
    ...verify

- :class:`Plan` is the base of every procedure's plan: it names its ``environment`` and says what is unsafe
  (:meth:`Plan.problems`); :meth:`Plan.raise_if_unsafe` refuses with :class:`UnsafePlan` (a
  :class:`~runbooks.errors.Refused`, so the runner records ``refused``, exit 2), naming each problem and the fix.
- :class:`Authorisation` is what ``runbooks.guard_apply`` returns when a run may change an environment. Only
  the gate makes one (it carries the gate's seal); :func:`require`, the first line of every procedure's
  apply, refuses (:class:`NotAuthorised`) an apply without one, with a forged one, or with one for another
  environment than the plan's. So an apply that skips the gate cannot be written: the type checker wants an
  ``Authorisation`` argument, and at run time only the gate can give one.
- Two row types, for two different questions. A *check* says whether something is right
  (:class:`runbooks.checks.base.CheckResult`: PASS / WARN / FAIL with evidence and a remediation; a
  flip's preflight and verification are checks). A *step* says what a procedure changes or changed
  (:class:`Step`: which step, on which target, its status in the procedure's words, and the detail). A
  plan's preflight may be either: it is a check when it judges the world, a step when it is recorded as the
  first step of a resumable procedure (rotate-keys).
- :func:`utcnow` is the one clock of the procedures (an aware ``datetime`` in UTC).

Kept free of vendor and runner imports: the kernel-side gate and every procedure import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from runbooks.errors import Refused


def utcnow() -> datetime:
    """Now, as an aware ``datetime`` in UTC."""
    return datetime.now(UTC)


class UnsafePlan(Refused):
    """The plan is not safe to apply (a failed preflight, a plan that no longer holds); nothing was changed.

    A :class:`~runbooks.errors.Refused`: the runner records ``refused`` (exit 2). Procedures subclass it
    (``FlipRefused``, ``RotationRefused``, ...) so that a caller can tell whose plan it was."""


class NotAuthorised(Refused):
    """An apply was called without the authorisation ``runbooks.guard_apply`` returns for the plan's
    environment; nothing was changed."""


_SEAL = object()  #: only the gate holds it (:func:`authorise`); an Authorisation without it is refused


@dataclass(frozen=True)
class Authorisation:
    """Proof that ``runbooks.guard_apply`` authorised this run to change ``environment``.

    Made only by the gate (:func:`authorise`); pass it to the procedure's apply, which checks it with
    :func:`require`."""

    environment: str
    _seal: object = field(default=None, repr=False, compare=False)

    @property
    def sealed(self) -> bool:
        return self._seal is _SEAL


def authorise(environment: str) -> Authorisation:
    """The gate's own constructor: call it only from ``runbooks.guard_apply``, after every check passed."""
    return Authorisation(environment, _SEAL)


@dataclass(frozen=True)
class Step:
    """One step of a procedure's plan or apply: what it did (or will do), to what, and how it went."""

    step: str
    status: str  #: the procedure's words: done | already done | waiting | skipped | failed | ...
    detail: str
    target: str | None = None  #: what the step acts on (a key, a hostname...), if the procedure has several

    def as_dict(self, target: str = "target") -> dict[str, str]:
        """The row as archived; the target column (if any) comes first, named ``target``."""
        head = {target: self.target} if self.target is not None else {}
        return {**head, "step": self.step, "status": self.status, "detail": self.detail}


class Plan(ABC):
    """What a destructive procedure will change in ``environment``, and whether it is safe to.

    Subclasses (usually dataclasses) give ``environment`` and :meth:`problems`."""

    #: the name of :attr:`Step.target` in this procedure's archived rows (rotate-keys: ``key``)
    target_name: ClassVar[str] = "target"
    #: raised by :meth:`raise_if_unsafe`
    refusal: ClassVar[type[UnsafePlan]] = UnsafePlan
    #: what to do about a failed preflight (appended to the refusal's message)
    fix: ClassVar[str] = "fix the findings above and re-run"

    environment: str

    @abstractmethod
    def problems(self) -> list[str]:
        """What makes this plan unsafe to apply (empty: safe). Each names the subject and what is wrong."""

    @property
    def safe(self) -> bool:
        return not self.problems()

    def raise_if_unsafe(self) -> None:
        """Refuse (:attr:`refusal`, a :class:`UnsafePlan`) when any problem remains; nothing was changed."""
        problems = self.problems()
        if problems:
            raise self.refusal(f"preflight failed: nothing was changed ({'; '.join(problems)}); {self.fix}")

    def table(self, steps: Iterable[Step]) -> list[dict[str, Any]]:
        """``steps`` as archived rows (the target column named :attr:`target_name`)."""
        return [s.as_dict(self.target_name) for s in steps]


def require(plan: Plan, authorisation: Authorisation) -> None:
    """The first line of every procedure's apply: the gate authorised this environment, the plan is safe.

    Raises :class:`NotAuthorised` (no authorisation, one not made by the gate, or one for another
    environment) or the plan's :class:`UnsafePlan`; either way nothing was changed."""
    if not isinstance(authorisation, Authorisation) or not authorisation.sealed:
        raise NotAuthorised(
            f"not applying to {plan.environment!r}: no authorisation from the gate. Call "
            "auth = runbooks.guard_apply(apply, confirm, environment) and pass auth to the apply"
        )
    if authorisation.environment != plan.environment:
        raise NotAuthorised(
            f"not applying: the plan targets {plan.environment!r} but the authorisation is for "
            f"{authorisation.environment!r}; plan and authorise the same environment"
        )
    plan.raise_if_unsafe()
