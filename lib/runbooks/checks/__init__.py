"""Checks and their PASS / WARN / FAIL results; one module per family of checks."""

from runbooks.checks.base import (
    CheckFn,
    CheckResult,
    ChecksFailed,
    Status,
    counts,
    fail_on_fail,
    run_checks,
    to_frame,
)

__all__ = ["CheckFn", "CheckResult", "ChecksFailed", "Status", "counts", "fail_on_fail", "run_checks", "to_frame"]
