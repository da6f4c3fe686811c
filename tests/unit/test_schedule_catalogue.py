"""Resolved schedules: the notebook declares, the inventory overrides (cron, enabled, params) or is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runbooks.inventory import load
from runbooks.inventory.models import Environment, ScheduleOverride, ScheduleSettings
from runbooks.schedule.catalogue import ScheduleError, deployed_drift, enabled, resolve

#: the production schedules of the catalogue (README), as the notebooks declare them
DECLARED = {
    "audit-config-placement": "0 6 * * *",
    "check-dns-posture": "*/30 * * * *",
    "nightly-backup": "17 3 * * *",
    "restore-drill": "30 5 * * 0",
    "verify-backup-posture": "47 3 * * *",
    "verify-platform-posture": "15 7 * * *",
}


def with_overrides(**overrides: ScheduleOverride) -> Environment:
    env = load("production")
    return env.model_copy(update={"schedules": ScheduleSettings(overrides=overrides)})


def test_notebooks_declare_the_schedules_and_production_agrees_with_cron_jobs() -> None:
    env = load("production")
    schedules = resolve(env)
    assert {s.procedure: s.cron for s in schedules} == DECLARED
    assert all(s.enabled and s.source == "notebook" for s in schedules)
    assert deployed_drift(env, schedules) == []


def test_overrides_change_cron_disable_and_add_params() -> None:
    env = with_overrides(
        **{
            "check-dns-posture": ScheduleOverride(cron="0 * * * *", params={"min_cert_days": "21"}),
            "restore-drill": ScheduleOverride(enabled=False),
        }
    )
    by = {s.procedure: s for s in resolve(env)}
    assert by["check-dns-posture"].cron == "0 * * * *" and by["check-dns-posture"].source == "inventory"
    assert by["check-dns-posture"].params == {"min_cert_days": "21"}
    assert by["restore-drill"].enabled is False
    assert "restore-drill" not in {s.procedure for s in enabled(list(by.values()))}
    drift = deployed_drift(env, list(by.values()))
    assert any("check-dns-posture" in d and "0 * * * *" in d for d in drift)
    assert any("restore-drill" in d and "disabled" in d for d in drift)


def test_an_override_cannot_declare_a_schedule() -> None:
    with pytest.raises(ScheduleError, match=r"schedules\.overrides\.rotate-keys: no notebook declares a schedule"):
        resolve(with_overrides(**{"rotate-keys": ScheduleOverride(cron="0 0 * * *")}))


def test_bad_params_name_the_field_and_the_parameter() -> None:
    env = with_overrides(**{"check-dns-posture": ScheduleOverride(params={"min_cert_dayz": "21"})})
    with pytest.raises(ScheduleError, match=r"overrides\.check-dns-posture\.params: .*min_cert_dayz"):
        resolve(env)
    env = with_overrides(**{"check-dns-posture": ScheduleOverride(params={"environment": "staging"})})
    with pytest.raises(ScheduleError, match=r"params\.environment"):
        resolve(env)


def test_a_bad_cron_override_is_an_invalid_inventory() -> None:
    with pytest.raises(ValidationError, match="not a valid cron expression"):
        ScheduleOverride(cron="every night")


def test_only_refuses_unknown_procedures() -> None:
    schedules = resolve(load("production"))
    assert [s.procedure for s in enabled(schedules, ["nightly-backup"])] == ["nightly-backup"]
    with pytest.raises(ScheduleError, match="--only flip-blue-green: not a scheduled procedure"):
        enabled(schedules, ["flip-blue-green"])


def test_a_cron_job_under_another_name_is_drift() -> None:
    env = load("production")
    render = env.schedules.render.model_copy(update={"name_prefix": "runbooks-"})  # type: ignore[union-attr]
    env = env.model_copy(update={"schedules": env.schedules.model_copy(update={"render": render})})
    drift = deployed_drift(env, resolve(env))
    assert len(drift) == len(DECLARED) and "'runbooks-nightly-backup'" in " ".join(drift)
