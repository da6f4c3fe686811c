"""Runbooks refuse an unfilled production inventory (issue 14, item 5): exit 2, the same lines as
``runbooks inventory check``, before any provider is called (no twin is needed: nothing is reached)."""

from __future__ import annotations

from pathlib import Path

from runner_fixtures import assert_refused

from runbooks import inventory
from runbooks.inventory import readiness
from runbooks.runner.run import run_procedure


def test_a_runbook_on_the_placeholder_production_inventory_is_refused(tmp_path: Path) -> None:
    outcome = run_procedure("check-dns-posture", environment="production", archive_root=tmp_path / "runs", timeout=300)
    assert_refused(outcome, "environment='production': ")
    assert outcome.error is not None
    env = inventory.load("production")
    for problem in readiness.identifier_problems(env):  # the same lines `runbooks inventory check` prints
        assert problem.line() in outcome.error.message
    assert "runbooks inventory check --env production" in outcome.error.message
