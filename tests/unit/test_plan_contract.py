"""The plan/apply contract (runbooks.plan): an unsafe plan is refused, an apply needs the gate's authorisation
for the plan's environment, and the happy path runs the change once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

import pytest

from runbooks.errors import Refused
from runbooks.kernel import guard
from runbooks.plan import (
    Authorisation,
    NotAuthorised,
    Plan,
    Step,
    UnsafePlan,
    authorise,
    require,
    utcnow,
)


class ToyRefused(UnsafePlan):
    pass


@dataclass
class ToyPlan(Plan):
    refusal = ToyRefused
    fix = "repair the toy"

    environment: str
    failed: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return list(self.failed)


def toy_apply(plan: ToyPlan, authorisation: Authorisation, changes: list[str]) -> None:
    require(plan, authorisation)
    changes.append(plan.environment)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Authorisation:
    """The real gate's authorisation for staging, as under the runner (which holds staging's lock)."""
    monkeypatch.setenv(guard.LOCKED_ENV, "staging")
    return guard.guard_apply(True, "staging", "staging")


def test_the_gate_returns_a_sealed_authorisation_for_its_environment(gate: Authorisation) -> None:
    assert isinstance(gate, Authorisation) and gate.sealed and gate.environment == "staging"


def test_happy_path_applies_once(gate: Authorisation) -> None:
    changes: list[str] = []
    plan = ToyPlan("staging")
    plan.raise_if_unsafe()
    assert plan.safe
    toy_apply(plan, gate, changes)
    assert changes == ["staging"]


def test_an_unsafe_plan_is_refused_naming_each_problem_and_the_fix(gate: Authorisation) -> None:
    plan = ToyPlan("staging", ["origin [a]: down", "record [b]: not a CNAME"])
    assert not plan.safe
    with pytest.raises(ToyRefused) as e:
        plan.raise_if_unsafe()
    assert isinstance(e.value, Refused)  # the runner records it as refused, exit 2
    assert str(e.value) == (
        "preflight failed: nothing was changed (origin [a]: down; record [b]: not a CNAME); repair the toy"
    )
    changes: list[str] = []
    with pytest.raises(ToyRefused):
        toy_apply(plan, gate, changes)  # even with the gate's authorisation
    assert changes == []


@pytest.mark.parametrize(
    ("authorisation", "message"),
    [
        (None, "no authorisation from the gate"),
        ("staging", "no authorisation from the gate"),
        (Authorisation("staging"), "no authorisation from the gate"),  # not made by the gate: no seal
        (authorise("production"), "the plan targets 'staging' but the authorisation is for 'production'"),
    ],
)
def test_an_apply_without_the_gates_authorisation_for_the_plans_environment_is_refused(
    authorisation: object, message: str
) -> None:
    changes: list[str] = []
    with pytest.raises(NotAuthorised, match=message) as e:
        toy_apply(ToyPlan("staging"), authorisation, changes)  # type: ignore[arg-type]  # what the types forbid
    assert isinstance(e.value, Refused)
    assert changes == []


def test_a_dry_run_gets_no_authorisation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(guard.LOCKED_ENV, "staging")
    with pytest.raises(guard.ApplyRefused, match="dry run"):
        guard.guard_apply(False, "staging", "staging")


def test_step_rows_name_their_target_column() -> None:
    rows = [Step("issue", "done", "new sha256:abc", target="K"), Step("wait", "waiting", "60s")]
    assert rows[0].as_dict() == {"target": "K", "step": "issue", "status": "done", "detail": "new sha256:abc"}
    assert rows[1].as_dict() == {"step": "wait", "status": "waiting", "detail": "60s"}

    class KeyPlan(ToyPlan):
        target_name = "key"

    assert KeyPlan("staging").table(rows)[0] == {
        "key": "K",
        "step": "issue",
        "status": "done",
        "detail": "new sha256:abc",
    }


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
