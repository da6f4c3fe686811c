"""Findings diff: what changed in the check results between two runs of a procedure.

Checks are compared by key (recorded result, check, subject; see :class:`~runbooks.audit.results.CheckOutcome`).
A check *started failing* when it is FAIL now and was not FAIL before (or was absent); it *stopped failing*
when it was FAIL and now is not (or is gone). Other status changes (PASS <-> WARN, appeared, disappeared)
are listed as *changed*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from runbooks.audit.results import CheckOutcome

ABSENT = "absent"


@dataclass(frozen=True)
class Change:
    key: str
    before: str  #: status, or ``absent``
    after: str
    evidence: str = ""  #: of the newer run, when known
    remediation: str = ""


@dataclass
class FindingsDiff:
    started_failing: list[Change] = field(default_factory=list)
    stopped_failing: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.started_failing or self.stopped_failing or self.changed)


def diff_findings(
    before: Mapping[str, str], after: Mapping[str, str], details: Mapping[str, CheckOutcome] | None = None
) -> FindingsDiff:
    """Compare check statuses (key -> status) of an older run with a newer one; ``details`` (the newer
    run's outcomes by key) adds evidence and remediation to the changes."""
    out = FindingsDiff()
    for key in [*after, *(k for k in before if k not in after)]:
        b, a = before.get(key, ABSENT), after.get(key, ABSENT)
        if b == a:
            out.unchanged += 1
            continue
        d = details.get(key) if details else None
        change = Change(key, b, a, d.evidence if d else "", d.remediation if d else "")
        if a == "FAIL":
            out.started_failing.append(change)
        elif b == "FAIL":
            out.stopped_failing.append(change)
        else:
            out.changed.append(change)
    return out
