"""Checks and their PASS / WARN / FAIL results; one module per family of checks."""

from runbooks.checks.base import (
    CheckResult,
    ChecksFailed,
    Status,
    counts,
    fail_on_fail,
    run_checks,
    to_fix,
    to_frame,
)
from runbooks.checks.builder import Check, CheckFamily, CheckFn, DuplicateCheck, Memo

__all__ = [
    "Check",
    "CheckFamily",
    "CheckFn",
    "CheckResult",
    "ChecksFailed",
    "DuplicateCheck",
    "Memo",
    "Status",
    "counts",
    "fail_on_fail",
    "run_checks",
    "to_fix",
    "to_frame",
]
