"""The schedules of an environment, resolved from their one declaration.

A schedule is declared once, in the notebook's ``metadata.runbook.schedule`` (a cron expression, UTC). An
environment's inventory may override it (``schedules.overrides.<procedure>``: another ``cron``, ``enabled:
false``, ``params``) but never declares a new one. The inventory's ``cron_jobs`` records the Render cron jobs
that exist (HOSTING.md); :func:`deployed_drift` compares it with the resolved schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.inventory.models import Environment
from runbooks.runner.params import NotebookError, NotebookSpec, ParamError, load_spec, validate
from runbooks.schedule import cron


class ScheduleError(ValueError):
    """A schedule that cannot be resolved: the message names the inventory field or notebook and the fix."""


@dataclass(frozen=True)
class Schedule:
    procedure: str
    environment: str
    cron: str
    enabled: bool
    #: parameters of every scheduled run (``-p name=value``), as strings
    params: dict[str, str] = field(default_factory=dict)
    #: "notebook" or "inventory" (the cron expression came from an override)
    source: str = "notebook"
    destructive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "procedure": self.procedure,
            "environment": self.environment,
            "cron": self.cron,
            "enabled": self.enabled,
            "params": dict(self.params),
            "source": self.source,
            "destructive": self.destructive,
        }


def declared_specs(notebooks: Path | None = None) -> dict[str, NotebookSpec]:
    """name -> spec of every notebook that declares a schedule."""
    from runbooks.runner.run import list_notebooks

    out: dict[str, NotebookSpec] = {}
    for path in list_notebooks(notebooks):
        try:
            spec = load_spec(path)
        except NotebookError as e:
            raise ScheduleError(f"{path.name}: {e}") from None
        if spec.schedule:
            try:
                cron.validate(spec.schedule)
            except cron.CronError as e:
                raise ScheduleError(f"{path.name}: metadata.runbook.schedule: {e}") from None
            out[spec.name] = spec
    return out


def resolve(env: Environment, notebooks: Path | None = None) -> list[Schedule]:
    """Every schedule of ``env`` (disabled ones included, ``enabled=False``), sorted by procedure."""
    specs = declared_specs(notebooks)
    field_ = f"{env.environment}.yaml: schedules.overrides"
    for name in env.schedules.overrides:
        if name not in specs:
            raise ScheduleError(
                f"{field_}.{name}: no notebook declares a schedule for {name!r} (scheduled: {', '.join(specs)}); "
                "declare the schedule in the notebook's metadata.runbook.schedule, or remove the override"
            )
    out: list[Schedule] = []
    for name, spec in sorted(specs.items()):
        over = env.schedules.overrides.get(name)
        params = dict(over.params) if over else {}
        if params:
            if "environment" in params:
                raise ScheduleError(
                    f"{field_}.{name}.params.environment: the environment is the inventory's; remove it"
                )
            try:
                validate(spec, params)
            except ParamError as e:
                raise ScheduleError(f"{field_}.{name}.params: {e}") from None
        out.append(
            Schedule(
                procedure=name,
                environment=env.environment,
                cron=(over.cron if over and over.cron else spec.schedule) or "",
                enabled=over.enabled if over else True,
                params=params,
                source="inventory" if over and over.cron else "notebook",
                destructive=spec.destructive,
            )
        )
    return out


def enabled(schedules: list[Schedule], only: list[str] | None = None) -> list[Schedule]:
    """The enabled schedules, restricted to ``only`` (procedure names) when given; an unknown name is refused."""
    if only:
        known = {s.procedure for s in schedules}
        unknown = [n for n in only if n not in known]
        if unknown:
            choices = ", ".join(sorted(known))
            raise ScheduleError(f"--only {unknown[0]}: not a scheduled procedure; choose from {choices}")
    return [s for s in schedules if s.enabled and (not only or s.procedure in only)]


def deployed_drift(env: Environment, schedules: list[Schedule]) -> list[str]:
    """Differences between the inventory's ``cron_jobs`` (what Render runs) and the resolved schedules."""
    jobs = {j.procedure: j for j in env.cron_jobs}
    prefix = env.schedules.render.name_prefix if env.schedules.render else None
    problems: list[str] = []
    for s in schedules:
        job = jobs.get(s.procedure)
        if s.enabled and job is None:
            problems.append(f"{s.procedure}: scheduled ({s.cron}) but no cron job is recorded in cron_jobs")
        elif not s.enabled and job is not None:
            problems.append(f"{s.procedure}: disabled, but cron_jobs still records the cron job {job.name!r}")
        elif job is not None and job.schedule != s.cron:
            problems.append(f"{s.procedure}: cron_jobs runs {job.schedule!r}, the schedule says {s.cron!r}")
        if s.enabled and job is not None and prefix is not None and job.name != prefix + s.procedure:
            problems.append(
                f"{s.procedure}: cron_jobs names the cron job {job.name!r}, the Blueprint {prefix + s.procedure!r}"
            )
    names = {s.procedure for s in schedules}
    problems += [f"{p}: cron_jobs records a cron job for a procedure with no schedule" for p in jobs if p not in names]
    return problems
