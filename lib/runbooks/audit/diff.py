"""Findings diff: what changed in the check results between two runs of a procedure.

Checks are compared by (recorded result, check, subject). A check *started failing* when it is FAIL now and
was not FAIL before (or was absent); it *stopped failing* when it was FAIL and now is not (or is gone).
Other status changes (PASS <-> WARN, appeared, disappeared) are listed as *changed*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbooks.audit.results import CheckOutcome, check_outcomes

ABSENT = "absent"


@dataclass(frozen=True)
class Change:
    key: str
    before: str  #: status, or ``absent``
    after: str
    evidence: str  #: of the newer run (or the older one when the check is gone)
    remediation: str


@dataclass
class FindingsDiff:
    started_failing: list[Change] = field(default_factory=list)
    stopped_failing: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.started_failing or self.stopped_failing or self.changed)


def _by_key(results: dict[str, Any]) -> dict[str, CheckOutcome]:
    return {o.key: o for o in check_outcomes(results)}


def diff_findings(before: dict[str, Any], after: dict[str, Any]) -> FindingsDiff:
    """Compare the recorded results of an older run (``before``) with a newer one (``after``)."""
    old, new = _by_key(before), _by_key(after)
    out = FindingsDiff()
    for key in list(new) + [k for k in old if k not in new]:
        o, n = old.get(key), new.get(key)
        b, a = (o.status if o else ABSENT), (n.status if n else ABSENT)
        if b == a:
            out.unchanged += 1
            continue
        shown = n or o
        assert shown is not None
        change = Change(key, b, a, shown.evidence, shown.remediation)
        if a == "FAIL":
            out.started_failing.append(change)
        elif b == "FAIL":
            out.stopped_failing.append(change)
        else:
            out.changed.append(change)
    return out
