"""Checks: small functions that look at one fact and return PASS / WARN / FAIL with evidence.

Every runbook that verifies a posture builds a list of bound checks (:mod:`runbooks.checks.builder`:
each check id written once, on a module-level function), runs them with :func:`run_checks`
(concurrently: they are network-bound), shows them (and :func:`to_fix`) and ends with :func:`fail_on_fail`, so
that a scheduled run fails, and alerts, on any FAIL.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from runbooks.checks.builder import CheckFn


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


STATUSES = tuple(s.value for s in Status)
#: the fields of a check result, in the order tables show them (``runbooks.show``, ``runs show``, the audit site)
CHECK_COLUMNS = ("check", "subject", "status", "evidence", "remediation")


@dataclass(frozen=True)
class CheckResult:
    check: str  #: stable dotted id, e.g. "dns.proxied"
    subject: str  #: what was checked, e.g. "api.runspectral.com"
    status: Status
    evidence: str  #: what was observed (never a secret value)
    remediation: str = ""  #: what to do when not PASS

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

    @classmethod
    def ok(cls, check: str, subject: str, evidence: str) -> CheckResult:
        return cls(check, subject, Status.PASS, evidence)

    @classmethod
    def fail(cls, check: str, subject: str, evidence: str, remediation: str) -> CheckResult:
        return cls(check, subject, Status.FAIL, evidence, remediation)

    @classmethod
    def warn(cls, check: str, subject: str, evidence: str, remediation: str) -> CheckResult:
        return cls(check, subject, Status.WARN, evidence, remediation)


def run_checks(checks: Iterable[CheckFn], *, max_workers: int = 16) -> list[CheckResult]:
    """Run independent checks concurrently; results keep the order of ``checks``.

    A check that raises is one FAIL row naming its check id and subject (:meth:`CheckFn.results`)."""
    fns = list(checks)
    if max_workers <= 1 or len(fns) <= 1:
        return [r for fn in fns for r in fn.results()]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(fns))) as pool:
        return [r for rs in pool.map(lambda fn: fn.results(), fns) for r in rs]


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    out = {s.value: 0 for s in Status}
    for r in results:
        out[r.status.value] += 1
    return out


def to_fix(results: Iterable[CheckResult]) -> list[dict[str, str]]:
    """What on-call has to fix: the results that did not PASS, as rows (check, subject, status, remediation)
    for ``runbooks.show``."""
    return [
        {"check": r.check, "subject": r.subject, "status": r.status.value, "remediation": r.remediation}
        for r in results
        if r.status is not Status.PASS
    ]


def to_frame(results: Iterable[CheckResult]) -> pd.DataFrame:
    """The results as a pandas DataFrame (for analysis in Jupyter; runbooks show results without pandas)."""
    import pandas as pd

    return pd.DataFrame([r.as_dict() for r in results], columns=list(CHECK_COLUMNS))


class ChecksFailed(RuntimeError):
    """Raised at the end of a verification runbook when any check FAILed."""

    def __init__(self, failed: list[CheckResult]):
        self.failed = failed
        lines = [f"{len(failed)} check(s) failed:"] + [
            f"  - {r.check} [{r.subject}]: {r.evidence} -> {r.remediation}" for r in failed
        ]
        super().__init__("\n".join(lines))


def fail_on_fail(results: Iterable[CheckResult]) -> None:
    failed = [r for r in results if r.status is Status.FAIL]
    if failed:
        raise ChecksFailed(failed)
