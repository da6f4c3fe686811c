"""Twin resets (issue 9, item 15): state kept about one twin never makes a fresh twin look half-rotated."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.sandbox import lifecycle
from runbooks.sandbox.component import Component, ComponentState, SandboxContext
from runbooks.state.rotation import KeyRotation, RotationStore
from runbooks.state.twin import twin_id


class _Nothing(Component):
    """A component with no process: enough for ``up``/``down`` to run their bookkeeping."""

    name = "nothing"

    def start(self, ctx: SandboxContext) -> ComponentState:
        return ComponentState(name=self.name, address="nowhere")

    def health(self, ctx: SandboxContext, state: ComponentState) -> tuple[bool, str]:
        return True, "fine"


@pytest.fixture
def bare_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "component_classes", lambda: {"nothing": _Nothing})
    monkeypatch.setattr(lifecycle, "skipped_components", dict)
    monkeypatch.setattr(lifecycle, "_check_inventory", lambda root: None)


def half_rotated() -> dict[str, KeyRotation]:
    return {"SUPABASE_SECRET_KEY": KeyRotation(key="SUPABASE_SECRET_KEY", provider="supabase", completed=["issue"])}


def test_each_fresh_twin_has_its_own_identity(tmp_path: Path, bare_lifecycle: None) -> None:
    root = tmp_path / "twin"
    lifecycle.up(root)
    first = twin_id(root)
    assert first
    lifecycle.up(root)  # already up: the same twin
    assert twin_id(root) == first
    lifecycle.down(root)
    lifecycle.up(root)
    assert twin_id(root) not in (None, first)
    lifecycle.reset(root)
    lifecycle.up(root)
    assert twin_id(root) not in (None, first)
    lifecycle.down(root)


def test_rotation_state_of_one_twin_does_not_follow_a_fresh_twin(
    tmp_path: Path, bare_lifecycle: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, archive = tmp_path / "twin", tmp_path / "runs"
    monkeypatch.setenv("RUNBOOKS_SANDBOX", str(root))
    lifecycle.up(root)
    RotationStore.for_environment("sandbox", archive).save(half_rotated())
    assert RotationStore.for_environment("sandbox", archive).active("SUPABASE_SECRET_KEY") is not None
    lifecycle.reset(root)
    lifecycle.up(root)
    assert RotationStore.for_environment("sandbox", archive).load() == {}  # a fresh twin starts clean
    lifecycle.down(root)


def test_other_environments_keep_their_plain_state_file(tmp_path: Path) -> None:
    store = RotationStore.for_environment("staging", tmp_path / "runs")
    assert store.path == tmp_path / "runs" / "state" / "rotate-keys" / "staging.json"
