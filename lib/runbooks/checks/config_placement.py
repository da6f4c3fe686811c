"""Config placement (HOSTING.md, "Two classes of runtime configuration"): where each value lives.

- Rotating key material (class 1) lives only in the environment's shared env group: every key the
  inventory lists is in its group, and none is set on a service.
- Code-coupled values (class 2) live only on services: none is in a group, and each service carries
  its own, with the inventory's value where the inventory fixes one.
- ``SPECTRAL_GENERATION`` is consistent: a service's variable names the generation its live deploy runs
  (an image-built deploy: the image's tag; a git-built one: the process reports the deploy's commit and
  the variable's generation), and all services run the same generation.
- A service that does not implement the service contract (docs/SERVICE_CONTRACT.md) is WARN "not
  verifiable", never PASS.
- No key rotation is left half-done (``rotate-keys``' state file): a rotation awaiting a manual revoke of
  the old value, or stopped half-way, is a WARN saying what to do.

Evidence names variables and fingerprints, never values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runbooks import service_contract
from runbooks.checks.base import CheckResult
from runbooks.checks.builder import CheckFamily, CheckFn, Memo
from runbooks.inventory.models import EnvGroup, Environment, Service
from runbooks.secrets import fingerprint

GENERATION = "SPECTRAL_GENERATION"

#: the checks of audit-config-placement, each id registered once
CONFIG = CheckFamily("config")


class RenderLike(Protocol):
    def env_group(self, name: str) -> Any: ...
    def services(self) -> list[Any]: ...
    def service_env(self, service_id: str) -> dict[str, str]: ...
    def live_deploy(self, service_id: str) -> Any: ...
    def health(self, service: Any) -> tuple[int, dict[str, Any]]: ...


#: kept for callers of the earlier name: the tag of an image reference
generation_of_image = service_contract.image_generation


def generation_check(name: str, var: str | None, live: Any, health: tuple[int, dict[str, Any]]) -> CheckResult:
    """``SPECTRAL_GENERATION`` against what the live deploy runs, image-built or git-built.

    Image: the variable must be the image's tag, and the process (if it reports) must run it. Commit (a
    service Render builds from the repository has no image): the process must report the deploy's commit
    (``commit``, from ``RENDER_GIT_COMMIT``) and the variable's generation. Without a health report, or a
    report without the contract's fields, the match cannot be verified: WARN, never PASS; a disagreement
    that is visible without the process (variable vs image tag) is still a FAIL.
    """
    fix = (
        f"the variable and the running build disagree: deploy the intended build on {name} with {GENERATION} set "
        f"to its generation (never change {GENERATION} without a deploy)"
    )
    if live is None:
        return generation_matches_deploy.fail(name, "the service has no live deploy", f"deploy service {name}")
    build = service_contract.build_of(live)
    code, body = health
    evidence = f"variable {GENERATION}={var}; live deploy {live.id} runs {build.describe()}"
    if build.kind == "image" and var != build.generation:
        return generation_matches_deploy.fail(name, evidence, fix)
    if not code:
        why = body.get("error", "no answer")
        return generation_matches_deploy.warn(
            name,
            f"{evidence}; not verifiable: no health report ({why})",
            f"check that {name} runs and reports its health ({service_contract.DOC})",
        )
    missing = service_contract.gap(body)
    if missing:
        return generation_matches_deploy.warn(
            name, f"{evidence}; not verifiable: {missing}", f"implement the contract on {name}"
        )
    running = body.get("generation")
    evidence += f"; the process reports generation {running}"
    if build.kind == "image":
        if running == build.generation:
            return generation_matches_deploy.ok(name, evidence)
        return generation_matches_deploy.fail(name, evidence, fix)
    if build.kind == "commit":
        commit = body.get("commit")
        if not commit:
            return generation_matches_deploy.warn(
                name,
                f"{evidence}; not verifiable: the process does not report its commit (RENDER_GIT_COMMIT)",
                f"make {name} report `commit` in its health report ({service_contract.DOC})",
            )
        evidence += f" from commit {str(commit)[:12]}"
        if commit == build.ref and running == var:
            return generation_matches_deploy.ok(name, evidence)
        return generation_matches_deploy.fail(name, evidence + f"; the deploy built commit {str(build.ref)[:12]}", fix)
    return generation_matches_deploy.warn(
        name,
        f"{evidence}; not verifiable: the deploy names neither a tagged image nor a commit",
        f"deploy {name} from a tagged image (registry/repo:<generation>) or from the repository",
    )


class _Snapshot:
    """What the checks read from Render, fetched once per run (checks run concurrently)."""

    def __init__(self, render: RenderLike):
        self.render, self._memo = render, Memo()

    def _get(self, kind: str, key: str, fetch: Callable[[], Any]) -> Any:
        return self._memo.get((kind, key), fetch)

    def group(self, name: str) -> Any:
        return self._get("group", name, lambda: self.render.env_group(name))

    def service(self, name: str) -> Any:
        services = self._get("services", "", self.render.services)
        found = next((s for s in services if s.name == name), None)
        if found is None:
            raise LookupError(f"service {name!r} does not exist in the Render workspace")
        return found

    def env(self, name: str) -> dict[str, str]:
        svc = self.service(name)
        return dict(self._get("env", svc.id, lambda: self.render.service_env(svc.id)))

    def live(self, name: str) -> Any:
        svc = self.service(name)
        return self._get("live", svc.id, lambda: self.render.live_deploy(svc.id))

    def health(self, name: str) -> tuple[int, dict[str, Any]]:
        svc = self.service(name)
        return self._get("health", svc.id, lambda: self.render.health(svc))


@CONFIG.check("config.key_in_group", title="every rotating key is in its env group")
def keys_in_group(snap: _Snapshot, group: EnvGroup) -> list[CheckResult]:
    g = snap.group(group.name)
    out = []
    for key in group.keys:
        if key in g.env:
            out.append(
                keys_in_group.ok(
                    f"{group.name}:{key}",
                    f"{key} is in the group ({fingerprint(g.env[key])})",
                )
            )
        else:
            out.append(
                keys_in_group.fail(
                    f"{group.name}:{key}",
                    f"{key} is missing from the group",
                    f"add {key} to env group {group.name} (rotate-keys issues a new value), then deploy",
                )
            )
    return out


@CONFIG.check("config.group_has_no_code_coupled", title="no code-coupled value is in a shared group")
def no_code_coupled_in_group(snap: _Snapshot, group: EnvGroup, coupled: list[str]) -> list[CheckResult]:
    g = snap.group(group.name)
    found = [k for k in coupled if k in g.env]
    if not found:
        return [no_code_coupled_in_group.ok(group.name, f"none of {', '.join(coupled)} is in the group")]
    return [
        no_code_coupled_in_group.fail(
            f"{group.name}:{k}",
            f"code-coupled {k} is set in the shared group",
            f"delete {k} from env group {group.name}; set it on each service at deploy time "
            "(its value depends on the image that service runs)",
        )
        for k in found
    ]


@CONFIG.check("config.service_linked", title="every service is linked to its env group")
def services_linked(snap: _Snapshot, group: EnvGroup, env: Environment) -> list[CheckResult]:
    g = snap.group(group.name)
    out = []
    for s in env.services:
        if s.env_group != group.name:
            continue
        if s.name in g.service_names:
            out.append(services_linked.ok(f"{group.name}:{s.name}", f"{s.name} is linked to {group.name}"))
        else:
            out.append(
                services_linked.fail(
                    f"{group.name}:{s.name}",
                    f"{s.name} is not linked to {group.name}",
                    f"link {s.name} to env group {group.name}, then deploy it",
                )
            )
    return out


@CONFIG.check("config.service_has_no_rotating_key", title="no rotating key is set on a service")
def no_key_on_service(snap: _Snapshot, service: Service, rotating: list[str]) -> list[CheckResult]:
    own = snap.env(service.name)
    found = [k for k in rotating if k in own]
    if not found:
        return [no_key_on_service.ok(service.name, "no rotating key is set on the service")]
    return [
        no_key_on_service.fail(
            f"{service.name}:{k}",
            f"rotating key {k} is set on the service ({fingerprint(own[k])}); it overrides the group's "
            "and would survive a rotation",
            f"delete {k} from service {service.name} (it reads it from env group {service.env_group}), then deploy it",
        )
        for k in found
    ]


@CONFIG.check("config.code_coupled_on_service", title="each service carries its code-coupled values")
def code_coupled_on_service(snap: _Snapshot, service: Service, coupled: list[str]) -> list[CheckResult]:
    own = snap.env(service.name)
    out = []
    for k in coupled:
        expected = service.code_coupled.get(k)
        subject = f"{service.name}:{k}"
        if k not in own:
            out.append(
                code_coupled_on_service.fail(
                    subject,
                    f"{k} is not set on the service",
                    f"set {k} on service {service.name} at its next deploy",
                )
            )
        elif expected is not None and own[k] != expected:
            out.append(
                code_coupled_on_service.fail(
                    subject,
                    f"{k}={own[k]} on the service; the inventory says {expected}",
                    f"set {k}={expected} on service {service.name} and deploy, or correct the inventory",
                )
            )
        else:
            out.append(code_coupled_on_service.ok(subject, f"{k}={own[k]}"))
    return out


@CONFIG.check("config.generation_matches_deploy", title="SPECTRAL_GENERATION names what the live deploy runs")
def generation_matches_deploy(snap: _Snapshot, service: Service) -> CheckResult:
    return generation_check(
        service.name, snap.env(service.name).get(GENERATION), snap.live(service.name), snap.health(service.name)
    )


@CONFIG.check("config.service_runs_current_keys", title="the process runs the configured key values")
def runs_current_keys(snap: _Snapshot, service: Service, rotating: list[str]) -> CheckResult:
    subject = service.name
    configured = {**snap.group(service.env_group).env, **snap.env(service.name)}
    code, body = snap.health(service.name)
    if not code:
        return runs_current_keys.fail(
            subject,
            f"no health report ({body.get('error', 'no answer')}"
            + (f"; read from {body['via']}" if body.get("via") else "")
            + ")",
            f"check that service {service.name} is running and reports its health ({service_contract.DOC})",
        )
    missing = service_contract.gap(body)
    if missing:
        return runs_current_keys.warn(
            subject,
            f"not verifiable: {missing}",
            f"make {service.name} report its key fingerprints as {service_contract.DOC} says",
        )
    reported: dict[str, str] = body.get("keys", {})
    stale = [k for k in rotating if k in configured and reported.get(k) != fingerprint(configured[k])]
    if stale:
        return runs_current_keys.fail(
            subject,
            "the process runs other values than configured for "
            + ", ".join(
                f"{k} (runs {reported.get(k, 'none')}, configured {fingerprint(configured[k])})" for k in stale
            ),
            f"deploy service {service.name} so that it restarts with its current env; if a deploy does "
            "not restart it, investigate the service (it ignores deploys)",
        )
    return runs_current_keys.ok(
        subject,
        f"the process runs the configured value of {len(reported)} key(s)",
    )


@CONFIG.check("config.generation_consistent", title="every service runs the same generation")
def generation_consistent(snap: _Snapshot, env: Environment) -> CheckResult:
    gens = {s.name: snap.env(s.name).get(GENERATION) for s in env.services}
    distinct = sorted({str(g) for g in gens.values()})
    evidence = ", ".join(f"{n}={g}" for n, g in gens.items())
    if len(distinct) == 1:
        return generation_consistent.ok(env.environment, evidence)
    return generation_consistent.warn(
        env.environment,
        evidence,
        "services run different generations: finish the rollout (or roll back) so that "
        "every service runs the same image",
    )


@CONFIG.check("config.rotation_complete", title="no key rotation is left half-done")
def rotations_complete(env: Environment, rotations: Mapping[str, Any] | None) -> list[CheckResult]:
    from runbooks.state.rotation import AWAITING_MANUAL_REVOKE, manual_instruction

    unfinished = {k: r for k, r in (rotations or {}).items() if r.status != "done"}
    if not unfinished:
        return [rotations_complete.ok(env.environment, "no key rotation is unfinished")]
    out = []
    for key, r in sorted(unfinished.items()):
        done = ", ".join(r.completed) or "nothing"
        if r.status == AWAITING_MANUAL_REVOKE:
            out.append(
                rotations_complete.warn(
                    key,
                    f"{AWAITING_MANUAL_REVOKE}: the previous value ({r.old_fingerprint}) may still be valid at "
                    f"its provider; the group and the services run {r.new_fingerprint} (done: {done})",
                    manual_instruction(r, env.environment),
                )
            )
        else:
            out.append(
                rotations_complete.warn(
                    key,
                    f"rotation started {r.started_at} stopped half-way (done: {done})"
                    + (f"; last error: {r.last_error}" if r.last_error else ""),
                    f"fix the cause, then re-run `runbooks run rotate-keys --env {env.environment} -p keys={key} "
                    f"--apply --confirm {env.environment}` to resume it",
                )
            )
    return out


def build_checks(env: Environment, render: RenderLike, rotations: Mapping[str, Any] | None = None) -> list[CheckFn]:
    """``rotations``: rotate-keys' state for the environment (key -> KeyRotation), to report unfinished ones."""
    snap = _Snapshot(render)
    rotating = [k.name for k in env.config.rotating_keys]
    coupled = list(env.config.code_coupled)
    checks: list[CheckFn] = []
    for group in env.env_groups:
        checks += [
            keys_in_group.on(group.name, snap, group),
            no_code_coupled_in_group.on(group.name, snap, group, coupled),
            services_linked.on(group.name, snap, group, env),
        ]
    for service in env.services:
        checks += [
            no_key_on_service.on(service.name, snap, service, rotating),
            code_coupled_on_service.on(service.name, snap, service, coupled),
            generation_matches_deploy.on(service.name, snap, service),
            runs_current_keys.on(service.name, snap, service, rotating),
        ]
    return [
        *checks,
        generation_consistent.on(env.environment, snap, env),
        rotations_complete.on(env.environment, env, rotations),
    ]
