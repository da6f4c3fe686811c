"""One check shape: each check id written once, on a module-level function, in its family's registry.

A family (one per verification runbook) registers its checks with a decorator::

    EDGE = CheckFamily("edge")

    @EDGE.check("dns.proxied", title="the record's proxied flag is the required posture")
    def proxied(cf: CloudflareProvider, h: Hostname) -> CheckResult:
        rec = cf.find_record(h.name)
        if rec is None:
            return proxied.fail(h.name, "no record", "create the record first")
        return proxied.ok(h.name, "proxied, as required")

The decorator replaces the function by a :class:`Check`: calling it runs the function (unit tests call it
directly), ``proxied.ok / .fail / .warn`` build rows carrying its id, and ``proxied.on(subject, *args)``
binds it to its arguments as a :class:`CheckFn`, the zero-argument callable
:func:`runbooks.checks.base.run_checks` runs concurrently. A bound check carries its id and subject, so a
check that crashes is still a named FAIL row (:meth:`Check.crashed`), never ``<lambda>``. Registering an
id twice in a family raises :class:`DuplicateCheck` when the module is imported.

:class:`Memo` is the per-run cache that checks running concurrently share (each fact fetched once).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

from runbooks.checks.base import CheckResult, Status

#: what a check function returns: one row, or several (e.g. one per key of a group)
Rows = CheckResult | Sequence[CheckResult]

P = ParamSpec("P")
R = TypeVar("R", bound=Rows)
T = TypeVar("T")

CRASH_REMEDIATION = "fix what prevents the check from running (credentials, reachability), then re-run"


class DuplicateCheck(ValueError):
    """A check id registered twice in one family (raised at import, so it cannot ship)."""


class Check(Generic[P, R]):
    """A registered check: its id, a title, and the function that looks at one fact."""

    def __init__(self, check_id: str, fn: Callable[P, R], *, title: str = "", family: str = ""):
        self.id, self.fn, self.family = check_id, fn, family
        self.title = title or (fn.__doc__ or "").strip().split("\n", 1)[0]
        self.__doc__, self.__name__ = fn.__doc__, getattr(fn, "__name__", check_id)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Check({self.id!r})"

    def on(self, subject: str, /, *args: P.args, **kwargs: P.kwargs) -> CheckFn:
        """This check bound to its arguments, ready for ``run_checks``; ``subject`` names it if it crashes."""
        return CheckFn(self, subject, lambda: self.fn(*args, **kwargs))

    def ok(self, subject: str, evidence: str) -> CheckResult:
        return CheckResult(self.id, subject, Status.PASS, evidence)

    def fail(self, subject: str, evidence: str, remediation: str) -> CheckResult:
        return CheckResult(self.id, subject, Status.FAIL, evidence, remediation)

    def warn(self, subject: str, evidence: str, remediation: str) -> CheckResult:
        return CheckResult(self.id, subject, Status.WARN, evidence, remediation)

    def crashed(self, subject: str, exc: BaseException) -> CheckResult:
        """The FAIL row of a check that could not run: its id, the exception's class and where it was raised."""
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else ""
        return self.fail(subject, f"check could not run: {type(exc).__name__}: {exc}{where}", CRASH_REMEDIATION)


@dataclass(frozen=True)
class CheckFn:
    """A check bound to its arguments: a zero-argument callable that knows its check id and subject."""

    check: Check[..., Any]
    subject: str
    run: Callable[[], Rows] = field(repr=False)

    @property
    def check_id(self) -> str:
        return self.check.id

    def __call__(self) -> Rows:
        return self.run()

    def results(self) -> list[CheckResult]:
        """The rows of this check; a crash is one FAIL row naming the check (never a crashed runbook)."""
        try:
            out = self.run()
        except Exception as e:  # a check that cannot run is a failed check
            return [self.check.crashed(self.subject, e)]
        return [out] if isinstance(out, CheckResult) else list(out)


class CheckFamily:
    """The registry of one family's checks (one verification runbook), in registration order."""

    def __init__(self, name: str):
        self.name = name
        self._checks: dict[str, Check[..., Any]] = {}

    def check(self, check_id: str, *, title: str = "") -> Callable[[Callable[P, R]], Check[P, R]]:
        """Register the decorated module-level function as check ``check_id`` (refused if already taken)."""

        def register(fn: Callable[P, R]) -> Check[P, R]:
            if check_id in self._checks:
                raise DuplicateCheck(f"check {check_id!r} is registered twice in family {self.name!r}")
            c = Check(check_id, fn, title=title, family=self.name)
            self._checks[check_id] = c
            return c

        return register

    def __getitem__(self, check_id: str) -> Check[..., Any]:
        return self._checks[check_id]

    def __iter__(self) -> Iterator[Check[..., Any]]:
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)

    def ids(self) -> list[str]:
        return list(self._checks)


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    value: Any = None


class Memo:
    """Facts fetched once per run and shared by checks running concurrently (one lock per fact)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}

    def get(self, key: Hashable, fetch: Callable[[], T]) -> T:
        """The value of ``key``, fetched by ``fetch`` on first use; a fetch that raises is not remembered."""
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if not slot.done:
                slot.value, slot.done = fetch(), True
            value: T = slot.value
            return value
