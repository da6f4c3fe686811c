"""Platform posture (``verify-platform-posture``): the hosting items of HOSTING.md no other runbook checks.

Render (the compute layer):
- ``render.service``: every service of the inventory exists with its type, plan and instance count
  (``platform.render``);
- ``render.region``: every service and cron job runs in the inventory's region, the database's region
  (the hot path must stay sub-millisecond);
- ``render.env_group_links``: each env group is linked to exactly the services the inventory says;
- ``render.cron_job``: each cron job exists with the inventory's schedule and plan, and runs the runbook.

Supabase (the data layer):
- ``supabase.pitr``: PITR enabled (backups endpoint) and its add-on's window at least ``pitr_days``;
- ``supabase.ssl``: SSL enforced on database connections, as the inventory says;
- ``supabase.network``: network restrictions allow exactly the inventory's CIDRs;
- ``supabase.access_token_lifetime``: within policy and no longer than what key rotation waits;
- ``supabase.signing_key``: the signing key in use is asymmetric;
- ``supabase.vector``: the ``vector`` extension (pgvector) installed at the expected version, read from the
  database's catalog (``pg_extension``).

Each row carries evidence and a remediation; a check that cannot read its fact is a FAIL row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runbooks.checks.base import CheckResult
from runbooks.checks.builder import CheckFamily, CheckFn, Memo
from runbooks.inventory.models import CronJob, EnvGroup, Environment, RenderServicePosture, SupabasePosture

#: Render region -> the AWS region of the same data centre (Supabase projects name AWS regions)
RENDER_TO_AWS = {
    "oregon": "us-west-2",
    "ohio": "us-east-2",
    "virginia": "us-east-1",
    "frankfurt": "eu-central-1",
    "singapore": "ap-southeast-1",
}
SYMMETRIC = frozenset({"HS256"})

#: the checks of verify-platform-posture, each id registered once
PLATFORM = CheckFamily("platform")


class RenderLike(Protocol):
    def services(self) -> list[Any]: ...
    def env_group(self, name: str) -> Any: ...


class SupabaseLike(Protocol):
    def project(self) -> dict[str, Any]: ...
    def list_backups(self) -> dict[str, Any]: ...
    def addons(self) -> dict[str, Any]: ...
    def ssl_enforcement(self) -> dict[str, Any]: ...
    def network_restrictions(self) -> dict[str, Any]: ...
    def auth_config(self) -> dict[str, Any]: ...
    def signing_keys(self) -> list[dict[str, Any]]: ...


#: the installed version of an extension in the project's database (None if not installed)
ExtensionVersion = Callable[[str], str | None]


def pitr_days(addons: dict[str, Any]) -> int | None:
    """The retention of the selected PITR add-on (``pitr_<days>``), None without one."""
    for a in addons.get("selected_addons", []):
        if a.get("type") == "pitr":
            variant = str((a.get("variant") or {}).get("id", ""))
            if variant.startswith("pitr_") and variant[5:].isdigit():
                return int(variant[5:])
    return None


@dataclass(frozen=True)
class _Platform:
    """What the checks of one run share: the inventory, the two vendors, each fact fetched once."""

    env: Environment
    render: RenderLike
    supabase: SupabaseLike
    extension_version: ExtensionVersion
    facts: Memo = field(default_factory=Memo)

    @property
    def want(self) -> SupabasePosture:
        return self.env.platform.supabase

    @property
    def ref(self) -> str:
        return self.env.supabase_project_ref

    def services(self) -> dict[str, Any]:
        return self.facts.get("render.services", lambda: {s.name: s for s in self.render.services()})

    def db_region(self) -> str:
        return str(self.facts.get("sb.project", self.supabase.project).get("region"))


@PLATFORM.check("render.service", title="each service exists with its type, plan and instances")
def render_service(p: _Platform, name: str, want: RenderServicePosture) -> CheckResult:
    env, services = p.env, p.services
    svc = services().get(name)
    if svc is None:
        return render_service.fail(
            name,
            f"no service or cron job named {name} in the Render workspace",
            f"create {name} as a {want.type} on plan {want.plan} (HOSTING.md: {len(env.services)} services "
            "plus cron jobs), or correct the inventory",
        )
    got = {"type": svc.type, "plan": svc.plan}
    expect: dict[str, Any] = {"type": want.type, "plan": want.plan}
    if want.type != "cron_job":
        got["instances"], expect["instances"] = svc.instances, want.instances
    diff = [f"{k} {got[k]} (inventory: {expect[k]})" for k in expect if got[k] != expect[k]]
    evidence = ", ".join(f"{k} {v}" for k, v in got.items())
    if diff:
        return render_service.fail(
            name,
            "differs: " + "; ".join(diff),
            f"set {name} to " + ", ".join(f"{k} {v}" for k, v in expect.items()) + " in Render, or "
            "correct the inventory (platform.render) if the change was intended",
        )
    return render_service.ok(name, evidence)


@PLATFORM.check("render.region", title="each service runs in the database's region")
def render_region(p: _Platform, name: str) -> list[CheckResult]:
    env, services, db_region = p.env, p.services, p.db_region
    svc = services().get(name)
    if svc is None:  # reported once, by render.service or render.cron_job
        return []
    db = db_region()
    aws = RENDER_TO_AWS.get(str(svc.region))
    evidence = f"{name} runs in {svc.region} ({aws or 'unknown'}); the database is in {db}"
    if svc.region != env.region or aws != db:
        return [
            render_region.fail(
                name,
                evidence + f"; the inventory's region is {env.region}",
                f"move {name} to {env.region} (Render cannot move a service: create it there, switch "
                "traffic, delete the old one); the hot path needs the database in the same region",
            )
        ]
    return [render_region.ok(name, evidence)]


@PLATFORM.check("render.env_group_links", title="each env group is linked to exactly its services")
def env_group_links(p: _Platform, group: EnvGroup) -> CheckResult:
    env, render, facts = p.env, p.render, p.facts
    g = facts.get(f"render.group.{group.name}", lambda: render.env_group(group.name))
    want = {s.name for s in env.services if s.env_group == group.name}
    got = set(g.service_names)
    missing, extra = sorted(want - got), sorted(got - want)
    evidence = f"linked: {', '.join(sorted(got)) or 'nothing'}"
    if missing or extra:
        return env_group_links.fail(
            group.name,
            evidence
            + (f"; not linked: {', '.join(missing)}" if missing else "")
            + (f"; linked but not in the inventory: {', '.join(extra)}" if extra else ""),
            f"link {', '.join(missing) or '-'} to {group.name} and unlink {', '.join(extra) or '-'} in Render "
            "(then deploy them), or correct the inventory",
        )
    return env_group_links.ok(group.name, evidence)


@PLATFORM.check("render.cron_job", title="each cron job has its schedule, command and plan")
def cron_job(p: _Platform, job: CronJob) -> CheckResult:
    env, services = p.env, p.services
    svc = services().get(job.name)
    command = env.platform.cron_command.format(procedure=job.procedure, environment=env.environment)
    fix = f"create cron job {job.name} in Render: schedule {job.schedule!r}, command `{command}`"
    if svc is None or svc.type != "cron_job":
        what = "does not exist" if svc is None else f"is a {svc.type}, not a cron job"
        return cron_job.fail(job.name, f"{job.name} {what}", fix)
    posture = env.platform.render.get(job.name)
    plan = posture.plan if posture else svc.plan
    evidence = f"schedule {svc.schedule!r}, command `{svc.start_command}`, plan {svc.plan}"
    if svc.schedule != job.schedule or svc.start_command != command or svc.plan != plan:
        return cron_job.fail(
            job.name,
            evidence + f"; the inventory wants {job.schedule!r}, `{command}`, plan {plan}",
            f"set {job.name}'s schedule, command and plan in Render as the inventory says",
        )
    return cron_job.ok(job.name, evidence)


@PLATFORM.check("supabase.pitr", title="PITR enabled with at least the promised window")
def supabase_pitr(p: _Platform) -> CheckResult:
    env, supabase, facts, ref = p.env, p.supabase, p.facts, p.ref
    backups = facts.get("sb.backups", supabase.list_backups)
    days = pitr_days(facts.get("sb.addons", supabase.addons))
    enabled = bool(backups.get("pitr_enabled"))
    evidence = f"pitr_enabled {enabled}; PITR add-on {f'{days} days' if days else 'none'}"
    if not enabled or days is None or days < env.pitr_days:
        return supabase_pitr.fail(
            ref,
            evidence + f"; the inventory promises {env.pitr_days} days",
            f"enable the PITR add-on with at least {env.pitr_days} days (Project Settings > Add-ons > "
            f"Point in time recovery, variant pitr_{next((v for v in (7, 14, 28) if v >= env.pitr_days), 28)})",
        )
    return supabase_pitr.ok(ref, evidence)


@PLATFORM.check("supabase.ssl", title="SSL enforcement as the inventory says")
def supabase_ssl(p: _Platform) -> CheckResult:
    supabase, facts, want, ref = p.supabase, p.facts, p.want, p.ref
    got = bool((facts.get("sb.ssl", supabase.ssl_enforcement).get("currentConfig") or {}).get("database"))
    evidence = f"SSL enforced on database connections: {got}"
    if got != want.ssl_enforced:
        return supabase_ssl.fail(
            ref,
            evidence + f" (inventory: {want.ssl_enforced})",
            "Database Settings > SSL Configuration > Enforce SSL on incoming connections "
            "(`PUT /v1/projects/{ref}/ssl-enforcement`), or correct the inventory",
        )
    return supabase_ssl.ok(ref, evidence)


@PLATFORM.check("supabase.network", title="network restrictions allow exactly the inventory's CIDRs")
def supabase_network(p: _Platform) -> CheckResult:
    supabase, facts, want, ref = p.supabase, p.facts, p.want, p.ref
    nr = facts.get("sb.network", supabase.network_restrictions)
    config = nr.get("config") or {}
    got = sorted([*config.get("dbAllowedCidrs", []), *config.get("dbAllowedCidrsV6", [])])
    evidence = f"allowed: {', '.join(got) or 'nothing'} ({nr.get('status', '?')})"
    if got != sorted(want.allowed_cidrs) or nr.get("status") != "applied":
        return supabase_network.fail(
            ref,
            evidence + f"; the inventory allows {', '.join(sorted(want.allowed_cidrs))}",
            "set the project's network restrictions to the inventory's CIDRs (Database Settings > Network "
            "Restrictions, or `POST /v1/projects/{ref}/network-restrictions/apply`), or correct the inventory",
        )
    return supabase_network.ok(ref, evidence)


@PLATFORM.check("supabase.access_token_lifetime", title="access tokens live no longer than policy and rotation allow")
def access_token_lifetime(p: _Platform) -> CheckResult:
    env, supabase, facts, want, ref = p.env, p.supabase, p.facts, p.want, p.ref
    exp = facts.get("sb.auth", supabase.auth_config).get("jwt_exp")
    limit = min(want.max_access_token_lifetime_seconds, env.access_token_lifetime_seconds)
    evidence = (
        f"access tokens live {exp}s; policy at most {want.max_access_token_lifetime_seconds}s, "
        f"key rotation waits {env.access_token_lifetime_seconds}s"
    )
    if not isinstance(exp, int) or exp > limit:
        return access_token_lifetime.fail(
            ref,
            evidence,
            f"set the JWT expiry to at most {limit}s (Authentication > Sessions, `jwt_exp`); a longer lifetime "
            "outlives a revoked signing key (rotate-jwt-signing-key waits the inventory's lifetime)",
        )
    return access_token_lifetime.ok(ref, evidence)


@PLATFORM.check("supabase.signing_key", title="the signing key in use is asymmetric")
def signing_key(p: _Platform) -> CheckResult:
    supabase, facts, want, ref = p.supabase, p.facts, p.want, p.ref
    keys = facts.get("sb.signing", supabase.signing_keys)
    in_use = [k for k in keys if k.get("status") == "in_use"]
    algs = sorted({str(k.get("algorithm")) for k in in_use})
    evidence = f"in use: {', '.join(algs) or 'no signing key'}"
    if not in_use or any(a in SYMMETRIC or a not in want.signing_algorithms for a in algs):
        return signing_key.fail(
            ref,
            evidence + f"; policy: one of {', '.join(want.signing_algorithms)} (asymmetric)",
            "create an asymmetric signing key (ES256) as standby and rotate to it with rotate-jwt-signing-key",
        )
    return signing_key.ok(ref, evidence)


@PLATFORM.check("supabase.vector", title="pgvector installed at the expected version")
def vector(p: _Platform) -> CheckResult:
    want, ref = p.want, p.ref
    got = p.extension_version("vector")
    evidence = f"pg_extension: vector {got or 'not installed'}"
    if got != want.vector_version:
        return vector.fail(
            ref,
            evidence + f"; the application expects {want.vector_version}",
            f"`create extension vector version '{want.vector_version}'` (or `alter extension vector update to "
            f"'{want.vector_version}'`) in the project's database, or correct the inventory",
        )
    return vector.ok(ref, evidence)


def build_checks(
    env: Environment, render: RenderLike, supabase: SupabaseLike, extension_version: ExtensionVersion
) -> list[CheckFn]:
    """Every platform posture check for ``env``: Render's, then Supabase's."""
    p = _Platform(env, render, supabase, extension_version)
    checks: list[CheckFn] = []
    for name, want in env.platform.render.items():
        if want.type != "cron_job":  # a cron job's existence, plan and command: render.cron_job
            checks.append(render_service.on(name, p, name, want))
        checks.append(render_region.on(name, p, name))
    checks += [env_group_links.on(group.name, p, group) for group in env.env_groups]
    checks += [cron_job.on(job.name, p, job) for job in env.cron_jobs]
    supabase_checks = (supabase_pitr, supabase_ssl, supabase_network, access_token_lifetime, signing_key, vector)
    return checks + [check.on(p.ref, p) for check in supabase_checks]
