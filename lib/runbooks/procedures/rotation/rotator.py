"""The rotation itself: plan (with its preflight) and apply, step by step, resumable (see the package doc).

:class:`KeyRotator` ``.plan(keys)`` reads the group, the services and the saved state and returns a
:class:`Plan` (a :class:`runbooks.plan.Plan`) whose preflight rows say what blocks the rotation;
``.apply(plan, authorisation)`` requires the gate's authorisation (:func:`runbooks.plan.require`) and runs
the steps in lock step across keys, saving each completed step to the state at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runbooks import service_contract
from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment, RotatingKey
from runbooks.plan import Authorisation, Step, require, utcnow
from runbooks.plan import Plan as BasePlan
from runbooks.procedures.rotation.errors import Interrupted, RotationRefused
from runbooks.procedures.rotation.issuers import Issued, Issuer
from runbooks.providers.render import RenderProvider, RenderService
from runbooks.secrets import fingerprint
from runbooks.state.rotation import (
    AWAITING_MANUAL_REVOKE,
    MANUAL_PARAM,
    KeyRotation,
    RotationFailed,
    RotationStore,
    manual_instruction,
    stamp,
)

STEPS = ("preflight", "issue", "write_group", "deploy", "verify_services", "revoke_old", "verify_old_refused")
#: test hook: stop the run right after this step (simulates an interruption half-way)
INTERRUPT_ENV = "RUNBOOKS_TEST_INTERRUPT_AFTER"


def _step(key: str, step: str, status: str, detail: str) -> Step:
    """A row of the rotation: ``key`` is the rotating key it acts on (``*``: every selected key)."""
    return Step(step, status, detail, target=key)


@dataclass
class Plan(BasePlan):
    """Step statuses: done | already done | re-issuing | awaiting manual revoke | confirmed by on-call | failed."""

    target_name = "key"
    refusal = RotationRefused

    environment: str
    group: str
    group_id: str
    services: list[str]
    keys: list[RotatingKey]
    rotations: dict[str, KeyRotation]  #: resumed or fresh
    preflight: list[Step]
    old_values: dict[str, str] = field(repr=False, default_factory=dict)

    def problems(self) -> list[str]:
        """The failed preflight rows."""
        return [f"{r.target}: {r.detail}" for r in self.preflight if r.status == "failed"]

    @property
    def awaiting_manual_revoke(self) -> list[str]:
        """Keys whose rotation waits for on-call to revoke the old value by hand (and confirm it)."""
        return [k.name for k in self.keys if self.rotations[k.name].status == AWAITING_MANUAL_REVOKE]

    def pending_rows(self) -> list[dict[str, str]]:
        """One WARN row per key awaiting a manual revoke: what on-call must do."""
        return [
            {
                "key": k,
                "status": "WARN",
                "state": AWAITING_MANUAL_REVOKE,
                "to do": manual_instruction(self.rotations[k], self.environment),
            }
            for k in self.awaiting_manual_revoke
        ]

    def rows(self) -> list[dict[str, str]]:
        out = []
        for k in self.keys:
            r = self.rotations[k.name]
            resumed = bool(r.completed)
            pending = [s for s in STEPS if s not in r.completed]
            state = f"resuming (done: {', '.join(r.completed)})" if resumed else "fresh rotation"
            if r.status == AWAITING_MANUAL_REVOKE:
                state = f"{AWAITING_MANUAL_REVOKE} (done: {', '.join(r.completed)})"
            out.append(
                {
                    "key": k.name,
                    "provider": k.provider,
                    "group": self.group,
                    "current": (r.new_fingerprint if r.done("write_group") else r.old_fingerprint) or "-",
                    "state": state,
                    "pending steps": ", ".join(pending),
                    "deploys": ", ".join(self.services),
                }
            )
        return out


class KeyRotator:
    def __init__(
        self,
        env: Environment,
        render: RenderProvider,
        issuers: dict[str, Issuer],
        store: RotationStore,
        *,
        run_id: str | None = None,
        deploy_timeout: float = 180.0,
        verify_timeout: float = 20.0,
        manual_revoked: Iterable[str] = (),
        log: Callable[[str], None] = print,
    ):
        self.env, self.render, self.issuers, self.store = env, render, issuers, store
        #: keys whose old value on-call confirmed having revoked by hand (parameter ``manual_revoked``)
        self.manual_revoked = frozenset(manual_revoked)
        self.run_id = run_id or os.environ.get("RUNBOOKS_RUN_ID") or f"interactive-{os.getpid()}"
        self.deploy_timeout, self.verify_timeout, self.log = deploy_timeout, verify_timeout, log

    # -- plan and preflight -----------------------------------------------------------------------
    def plan(self, keys: list[RotatingKey]) -> Plan:
        groups = {g.name for g in self.env.env_groups if any(k.name in g.keys for k in keys)}
        if len(groups) != 1:
            raise ValueError(f"the keys must live in one env group; they are in {sorted(groups) or 'none'}")
        group_name = groups.pop()
        group = self.render.env_group(group_name)
        saved = self.store.load()
        rotations = {}
        for k in keys:
            r = saved.get(k.name)
            rotations[k.name] = r if r is not None and r.status != "done" else KeyRotation(k.name, k.provider)
        services = [s.name for s in self.env.services if s.env_group == group_name]
        for name in sorted(self.manual_revoked):
            r = rotations.get(name)
            if r is None or not r.done("verify_services"):
                raise BadParameter(
                    MANUAL_PARAM,
                    ",".join(sorted(self.manual_revoked)),
                    f"{name} has no rotation awaiting a manual revoke (the old value may be revoked only once "
                    "every service runs the new one)",
                    f"run without {MANUAL_PARAM} first; revoke by hand only when the run says {AWAITING_MANUAL_REVOKE}",
                    allowed=[",".join(sorted(self.manual_revoked))],  # validated: names of selected keys
                )
        plan = Plan(self.env.environment, group_name, group.id, services, keys, rotations, [])
        plan.preflight = self._preflight(plan, group)
        return plan

    def _service_objs(self, plan: Plan) -> dict[str, RenderService]:
        by_name = {s.name: s for s in self.render.services()}
        return {n: by_name[n] for n in plan.services if n in by_name}

    def _preflight(self, plan: Plan, group: Any) -> list[Step]:
        rows: list[Step] = []
        services = self._service_objs(plan)
        for missing in sorted(set(plan.services) - set(services)):
            rows.append(_step("*", "preflight", "failed", f"service {missing} does not exist in Render"))
        for name in plan.services:
            if name not in group.service_names:
                rows.append(_step("*", "preflight", "failed", f"service {name} is not linked to {plan.group}"))
        health = {n: self.render.health(s) for n, s in services.items()}
        for name, (code, body) in health.items():
            gap = service_contract.gap(body) if code else None
            if gap:
                why = f"service {name} cannot be verified: {gap}; a rotation would have no proof it took"
                rows.append(_step("*", "preflight", "failed", why))
            elif code != 200 or not body.get("healthy"):
                why = f" ({body['error']})" if not code and body.get("error") else ""
                rows.append(_step("*", "preflight", "failed", f"service {name} is not healthy (HTTP {code}){why}"))
        for k in plan.keys:
            r = plan.rotations[k.name]
            resumed = bool(r.completed)
            if k.name not in group.env:
                rows.append(_step(k.name, "preflight", "failed", f"{k.name} is not in env group {plan.group}"))
                continue
            current = group.env[k.name]
            fp = fingerprint(current)
            on_services = [n for n, s in services.items() if k.name in self.render.service_env(s.id)]
            if on_services:
                rows.append(
                    _step(
                        k.name,
                        "preflight",
                        "failed",
                        f"{k.name} is also set on service(s) {', '.join(on_services)}: it would survive "
                        "the rotation; delete it there first (see audit-config-placement)",
                    )
                )
            if not resumed:
                stale = [n for n, (_, b) in health.items() if b.get("keys", {}).get(k.name) != fp]
                if stale:
                    rows.append(
                        _step(
                            k.name,
                            "preflight",
                            "failed",
                            f"service(s) {', '.join(stale)} do not run the group's current value ({fp}); "
                            "deploy them and re-run",
                        )
                    )
                known, old_id, detail = self.issuers[k.name].identify(current)
                if not known:
                    rows.append(_step(k.name, "preflight", "failed", detail))
                    continue
                r.old_id, r.old_fingerprint = old_id, fp
                plan.old_values[k.name] = current
                rows.append(_step(k.name, "preflight", "done", f"current {fp}: {detail}"))
            else:
                detail = f"resuming rotation started {r.started_at} (done: {', '.join(r.completed)}); group holds {fp}"
                if r.status == AWAITING_MANUAL_REVOKE:
                    detail += f"; {AWAITING_MANUAL_REVOKE}: " + (
                        "confirmed by on-call" if k.name in self.manual_revoked else "not confirmed yet"
                    )
                rows.append(_step(k.name, "preflight", "done", detail))
        return rows

    # -- apply ------------------------------------------------------------------------------------
    def _save(self, plan: Plan) -> None:
        saved = self.store.load()
        for k, r in plan.rotations.items():
            r.updated_at = stamp()
            if self.run_id not in r.runs:
                r.runs.append(self.run_id)
            saved[k] = r
        self.store.save(saved)

    def _complete(self, plan: Plan, step: str, keys: Iterable[str]) -> None:
        for k in keys:
            if step not in plan.rotations[k].completed:
                plan.rotations[k].completed.append(step)
        self._save(plan)
        if os.environ.get(INTERRUPT_ENV) == step:
            raise Interrupted(f"interrupted after step {step} ({INTERRUPT_ENV})")

    def apply(
        self, plan: Plan, authorisation: Authorisation, *, on_row: Callable[[Step], None] | None = None
    ) -> list[Step]:
        """Run the remaining steps (``authorisation``: what ``runbooks.guard_apply`` returned)."""
        require(plan, authorisation)
        rows: list[Step] = []

        def emit(row: Step) -> None:
            rows.append(row)
            self.log(f"{row.target}: {row.step}: {row.status}: {row.detail}")
            if on_row:
                on_row(row)

        names = [k.name for k in plan.keys]
        try:
            self._complete(plan, "preflight", names)
            new_values = self._issue(plan, emit)
            self._write_group(plan, new_values, emit)
            self._deploy(plan, emit)
            self._verify_services(plan, emit)
            self._revoke(plan, emit)
            self._verify_refused(plan, emit)
        except Interrupted:
            raise
        except Exception as e:
            from runbooks.redact import cut  # scrub before cutting: the state file is on disk

            for k in names:
                plan.rotations[k].last_error = cut(f"{type(e).__name__}: {e}", 500)
            self._save(plan)
            raise
        for k in names:
            r = plan.rotations[k]
            r.last_error = None
            r.status = "done" if r.done("verify_old_refused") else AWAITING_MANUAL_REVOKE
        self._save(plan)
        return rows

    def _issue(self, plan: Plan, emit: Callable[[Step], None]) -> dict[str, str]:
        values: dict[str, str] = {}
        group_env: dict[str, str] | None = None
        for k in plan.keys:
            r, issuer = plan.rotations[k.name], self.issuers[k.name]
            if r.done("issue"):
                if group_env is None:
                    group_env = self.render.env_group(plan.group).env
                held = group_env.get(k.name)
                found = None if r.done("write_group") else issuer.find_issued(r)
                written = held is not None and fingerprint(held) == r.new_fingerprint
                discard = getattr(issuer, "discard", None)
                if found is not None and fingerprint(found.value) == r.new_fingerprint:
                    values[k.name] = found.value
                elif not written and discard is not None:
                    # shown once and lost with the interrupted run, never distributed: replace it
                    detail = discard(r)
                    r.completed.remove("issue")
                    r.issuing, r.new_id, r.new_fingerprint = False, None, None
                    self._save(plan)
                    emit(_step(k.name, "issue", "re-issuing", detail))
                if r.done("issue"):
                    emit(_step(k.name, "issue", "already done", f"new credential {r.new_fingerprint} ({r.new_id})"))
                    continue
            if r.issuing:
                found = issuer.find_issued(r)
                if found is not None:
                    self._issued(plan, k.name, found, values)
                    detail = f"found the credential issued by an interrupted run: {r.new_fingerprint}"
                    emit(_step(k.name, "issue", "already done", detail))
                    continue
            r.new_name = r.new_name or f"rotated_{utcnow():%Y%m%d%H%M%S}"
            r.issuing = True
            self._save(plan)
            issued = issuer.issue(r)
            self._issued(plan, k.name, issued, values)
            detail = f"new credential {r.new_fingerprint}" + (f" ({issued.id})" if issued.id else "")
            emit(_step(k.name, "issue", "done", detail))
        return values

    def _issued(self, plan: Plan, key: str, got: Issued, values: dict[str, str]) -> None:
        """The new credential of ``key`` is known: its value (kept in memory only), id and fingerprint; the
        ``issue`` step is done."""
        r = plan.rotations[key]
        values[key] = got.value
        r.new_id, r.new_fingerprint = got.id, fingerprint(got.value)
        self._complete(plan, "issue", [key])

    def _write_group(self, plan: Plan, values: dict[str, str], emit: Callable[[Step], None]) -> None:
        group = self.render.env_group(plan.group)
        for k in plan.keys:
            r = plan.rotations[k.name]
            current = group.env.get(k.name)
            if current is not None and fingerprint(current) == r.new_fingerprint:
                if not r.done("write_group"):
                    self._complete(plan, "write_group", [k.name])
                emit(_step(k.name, "write_group", "already done", f"{plan.group} holds {r.new_fingerprint}"))
                continue
            value = values.get(k.name)
            if value is None:
                found = self.issuers[k.name].find_issued(r)
                if found is None or fingerprint(found.value) != r.new_fingerprint:
                    raise RotationFailed(
                        f"{k.name}: the new credential {r.new_fingerprint} cannot be read back to "
                        "write it to the group; issue a new one (delete the state entry)"
                    )
                value = found.value
            self.render.set_group_var(plan.group_id, k.name, value)
            self._complete(plan, "write_group", [k.name])
            emit(_step(k.name, "write_group", "done", f"{plan.group} now holds {r.new_fingerprint}"))

    def _deploy(self, plan: Plan, emit: Callable[[Step], None]) -> None:
        todo = [k.name for k in plan.keys if not plan.rotations[k.name].done("deploy")]
        if not todo:
            emit(_step("*", "deploy", "already done", "services were deployed with the new values"))
            return
        services = self._service_objs(plan)
        started = {name: self.render.deploy(s.id) for name, s in services.items()}
        for k in todo:
            plan.rotations[k].deploys = {n: d.id for n, d in started.items()}
        self._save(plan)
        failed = []
        for name, d in started.items():
            final = self.render.wait_deploy(services[name].id, d.id, timeout=self.deploy_timeout)
            emit(
                _step(
                    "*",
                    "deploy",
                    "done" if final.status == "live" else "failed",
                    f"{name}: deploy {d.id} {final.status}",
                )
            )
            if final.status != "live":
                failed.append(name)
        if failed:
            raise RotationFailed(
                f"deploys did not go live on {', '.join(failed)}; the old credentials are still "
                "valid, nothing is broken: fix the service and re-run to resume"
            )
        self._complete(plan, "deploy", todo)

    def _verify_services(self, plan: Plan, emit: Callable[[Step], None]) -> None:
        todo = [k for k in plan.keys if not plan.rotations[k.name].done("verify_services")]
        if not todo:
            return
        services = self._service_objs(plan)
        deadline = time.monotonic() + self.verify_timeout
        problems: dict[str, str] = {}
        while True:
            problems = {}
            for name, s in services.items():
                code, body = self.render.health(s)
                for k in todo:
                    want = plan.rotations[k.name].new_fingerprint
                    got = body.get("keys", {}).get(k.name)
                    # the service's own use of the key: Supabase calls, Cloudflare token verification
                    use = {**body.get("supabase", {}), **body.get("cloudflare", {})}.get(k.name, {"ok": True})
                    if got != want:
                        problems[f"{name}:{k.name}"] = f"reports {got or 'nothing'}, expected {want}"
                    elif code != 200 or not use.get("ok"):
                        why = f": {use['detail']}" if use.get("detail") and not use.get("ok") else ""
                        problems[f"{name}:{k.name}"] = f"runs {want} but is not healthy (HTTP {code}){why}"
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for name in services:
            for k in todo:
                p = problems.get(f"{name}:{k.name}")
                ok = f"{name} runs {plan.rotations[k.name].new_fingerprint} and works"
                emit(_step(k.name, "verify_services", "failed" if p else "done", f"{name}: {p}" if p else ok))
        if problems:
            raise RotationFailed(
                "services do not run the new credential: "
                + "; ".join(f"{s} {p}" for s, p in problems.items())
                + f" after {self.verify_timeout:g} s. The old credential was NOT revoked. Fix the service(s) (a "
                "service that ignores deploys needs a restart; one slower to start, a larger verify_timeout_seconds) "
                "and re-run to resume"
            )
        self._complete(plan, "verify_services", [k.name for k in todo])

    def _revoke(self, plan: Plan, emit: Callable[[Step], None]) -> None:
        for k in plan.keys:
            r, issuer = plan.rotations[k.name], self.issuers[k.name]
            if r.done("revoke_old"):
                emit(_step(k.name, "revoke_old", "already done", f"old credential {r.old_fingerprint}"))
                continue
            if getattr(issuer, "manual_revoke", False):
                if k.name not in self.manual_revoked:
                    r.status = AWAITING_MANUAL_REVOKE
                    self._save(plan)
                    emit(
                        _step(
                            k.name,
                            "revoke_old",
                            "awaiting manual revoke",
                            manual_instruction(r, plan.environment),
                        )
                    )
                    continue
                self._complete(plan, "revoke_old", [k.name])
                emit(
                    _step(
                        k.name,
                        "revoke_old",
                        "confirmed by on-call",
                        f"on-call confirmed ({MANUAL_PARAM}={k.name}) revoking the previous value "
                        f"({r.old_fingerprint}) in the provider's console",
                    )
                )
                continue
            detail = issuer.revoke(r)
            self._complete(plan, "revoke_old", [k.name])
            emit(_step(k.name, "revoke_old", "done", detail))

    def _verify_refused(self, plan: Plan, emit: Callable[[Step], None]) -> None:
        for k in plan.keys:
            r, issuer = plan.rotations[k.name], self.issuers[k.name]
            if r.done("verify_old_refused") or not r.done("revoke_old"):
                continue  # done, or awaiting a manual revoke
            if getattr(issuer, "manual_revoke", False):
                self._complete(plan, "verify_old_refused", [k.name])
                emit(
                    _step(
                        k.name,
                        "verify_old_refused",
                        "confirmed by on-call",
                        f"{issuer.refused(r, None)[1]}; relies on on-call's confirmation ({MANUAL_PARAM}={k.name})",
                    )
                )
                continue
            refused, detail = issuer.refused(r, plan.old_values.get(k.name))
            emit(_step(k.name, "verify_old_refused", "done" if refused else "failed", detail))
            if not refused:
                raise RotationFailed(f"{k.name}: the old credential is still accepted: {detail}")
            self._complete(plan, "verify_old_refused", [k.name])
