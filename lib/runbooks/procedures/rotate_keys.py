"""Rotate key material held in an environment's shared env group, resumably.

For each requested key (a rotating key of the inventory), in lock step across keys:

1. ``preflight``: the key is in the group and on no service; every service is linked to the group and
   healthy, and (fresh rotation) runs the group's current value; the provider knows the current credential.
2. ``issue``: a new credential at its provider (Supabase API key; a new Cloudflare API token with the
   current token's policies, created with the runbooks' own token, which is never touched; an OAuth client
   secret read from the inventory's ``source`` reference). Old and new are both valid until ``revoke_old``.
3. ``write_group``: the new value into the env group.
4. ``deploy``: deploy every linked service and wait until each deploy is live.
5. ``verify_services``: each service reports the new value's fingerprint and works.
6. ``revoke_old``: revoke the previous credential at its provider.
7. ``verify_old_refused``: the previous credential is refused.

An OAuth client secret is revoked by hand in the identity provider's console: the run cannot do it, nor prove
it. Its rotation stops after ``verify_services`` with status ``awaiting_manual_revoke`` (in the state file and
the run record) and a row saying what to do; on-call revokes the old secret, then re-runs with
``manual_revoked=<KEY>``, which completes it. Until then ``audit-config-placement`` reports it as WARN.

Resumable: the state of a rotation (per key: completed steps, the old and new credential's id and
fingerprint, never a value) is kept in the archive store as ``state/rotate-keys/<environment>.json`` (under a
local archive's root, or in the bucket), written conditionally (:class:`RotationStore`). A run
that stops half-way is continued by the next run: every step checks its precondition against the
providers (the group already holds the new value, the old key is already gone...) so nothing is issued
twice. A credential whose value cannot be read back (a Cloudflare token) and that an interrupted run
issued but never wrote to the group is deleted and replaced, so at most one new credential is live.
Values only ever live in memory, at the provider and in the env group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from runbooks import service_contract
from runbooks.errors import BadParameter, Refused
from runbooks.inventory.models import Environment, RotatingKey
from runbooks.providers.base import ProviderError
from runbooks.providers.render import RenderProvider, RenderService, protect
from runbooks.secrets import fingerprint
from runbooks.state.rotation import (
    AWAITING_MANUAL_REVOKE,
    MANUAL_PARAM,
    KeyRotation,
    RotationFailed,
    RotationStore,
    manual_instruction,
    utcnow,
)

STEPS = ("preflight", "issue", "write_group", "deploy", "verify_services", "revoke_old", "verify_old_refused")
#: test hook: stop the run right after this step (simulates an interruption half-way)
INTERRUPT_ENV = "RUNBOOKS_TEST_INTERRUPT_AFTER"


class RotationRefused(Refused):
    """Preflight failed: nothing was changed (``refused``, exit 2, under the runner)."""


class Interrupted(RuntimeError):
    """Raised by the test hook right after a step completed."""


def _names(value: str | Iterable[str]) -> list[str]:
    return [k.strip() for k in (value.split(",") if isinstance(value, str) else value) if k.strip()]


def parse_keys(env: Environment, keys: str | Iterable[str]) -> list[RotatingKey]:
    """The inventory's rotating keys named in ``keys`` (comma list); anything else is refused
    (:class:`BadParameter`: an empty list, unknown names, code-coupled values)."""
    names = _names(keys)
    known = [k.name for k in env.config.rotating_keys]
    fix = f"give a comma list of rotating keys of {env.environment} [one of: {', '.join(known)}]"
    if not names:
        raise BadParameter("keys", keys, "names no key", fix)
    unknown = [n for n in names if n not in known]
    if unknown:
        coupled = [n for n in unknown if n in env.config.code_coupled]  # names of the inventory: may be shown
        problem = f"{len(unknown)} name(s) not rotating key material of the inventory"
        if coupled:
            problem += f" ({', '.join(coupled)}: code-coupled, set on each service at deploy time, never rotated)"
        raise BadParameter("keys", keys, problem, fix)
    return [env.config.rotating(n) for n in dict.fromkeys(names)]


def parse_manual_revoked(env: Environment, keys: list[RotatingKey], value: str | Iterable[str]) -> set[str]:
    """Keys whose old value on-call confirms having revoked by hand (``manual_revoked``): each must be one of
    the selected ``keys`` and one whose old value the runbook cannot revoke itself (an OAuth client secret)."""
    names = _names(value)
    manual = [k.name for k in keys if k.provider == "oauth"]
    wrong = [n for n in names if n not in manual]
    if wrong:
        raise BadParameter(
            MANUAL_PARAM,
            value,
            f"{len(wrong)} name(s) not a selected key whose old value is revoked by hand",
            (
                f"list only selected keys revoked in a provider's console [one of: {', '.join(manual)}]"
                if manual
                else "leave it empty: the runbook revokes the selected keys itself"
            ),
        )
    return set(names)


# -- issuers: one per provider kind ------------------------------------------------------------------
@dataclass(frozen=True)
class Issued:
    id: str | None
    name: str | None
    value: str = field(repr=False)


class Issuer(Protocol):
    #: can the old credential be revoked separately from issuing (False: the issue already revoked it)
    separate_revoke: bool

    def identify(self, current: str) -> tuple[bool, str | None, str]: ...
    def issue(self, rotation: KeyRotation) -> Issued: ...
    def find_issued(self, rotation: KeyRotation) -> Issued | None: ...
    def revoke(self, rotation: KeyRotation) -> str: ...
    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]: ...


class SupabaseKeyIssuer:
    """A Supabase API key (secret or publishable): create a new one, delete the old one."""

    separate_revoke = True

    def __init__(self, keys: Any, kind: str):
        self.keys, self.kind = keys, kind

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        k = self.keys.find_api_key(current)
        if k is None:
            return False, None, "the group's value is not a live API key of the project"
        if k.type != self.kind:
            return False, None, f"the group's value is a {k.type} key, expected {self.kind}"
        return True, k.id, f"{k.type} key {k.name} ({k.id})"

    def issue(self, rotation: KeyRotation) -> Issued:
        name = rotation.new_name or f"rotated_{datetime.now(UTC):%Y%m%d%H%M%S}"
        k = self.keys.create_api_key(self.kind, name, "issued by rotate-keys")
        return Issued(k.id, k.name, protect(k.value, f"new:{rotation.key}"))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        for k in self.keys.api_keys(reveal=True):
            if (rotation.new_id and k.id == rotation.new_id) or (not rotation.new_id and k.name == rotation.new_name):
                return Issued(k.id, k.name, k.value) if k.value else None
        return None

    def revoke(self, rotation: KeyRotation) -> str:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the old API key to revoke")
        if not any(k.id == rotation.old_id for k in self.keys.api_keys()):
            return f"API key {rotation.old_id} was already deleted"
        self.keys.delete_api_key(rotation.old_id)
        return f"deleted API key {rotation.old_id}"

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        exists = any(k.id == rotation.old_id for k in self.keys.api_keys())
        if exists:
            return False, f"API key {rotation.old_id} still exists"
        if old_value is None:
            return True, f"API key {rotation.old_id} no longer exists (old value not held by this run: resumed)"
        accepted, status = self.keys.project_accepts(old_value)
        return (not accepted), f"the project's API answers HTTP {status} to the old key ({rotation.old_fingerprint})"


class CloudflareTokenIssuer:
    """The runtime's Cloudflare API token, rotated with zero downtime: create a second token with the same
    policies (both valid during the overlap), move every service to it, then delete the old one.

    ``admin`` is the runbooks' own token (it holds the API Tokens permission); it is never rolled or deleted:
    a group that holds it is refused at preflight. A new token's value is shown once by Cloudflare; if a run
    stops before writing it to the group, the next run deletes that token (it was never distributed) and
    creates another, so at most one new token is live."""

    separate_revoke = True

    def __init__(self, admin: Any, verify: Callable[[str], Any]):
        self.admin, self.verify = admin, verify

    @staticmethod
    def _name(base: str, rotation: KeyRotation) -> str:
        return f"{base.split(' (rotated_')[0]} ({rotation.new_name})"

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        try:
            info = self.verify(current)
        except ProviderError as e:
            return False, None, f"Cloudflare does not accept the group's token ({e.status or e})"
        if info.id == self.admin.verify_token().id:
            return (
                False,
                None,
                (
                    "the group holds the runbooks' own admin token: give the runtime its own token "
                    "(only the permissions it needs) and put that one in the group"
                ),
            )
        token = self.admin.get_token(info.id)
        if token is None:
            return False, None, f"token {info.id} is not visible to the runbooks' token (another user's token?)"
        return True, info.id, f"token {token.name} ({info.id}, {info.status})"

    def _orphans(self, rotation: KeyRotation) -> list[Any]:
        suffix = f" ({rotation.new_name})"
        return [t for t in self.admin.list_tokens() if t.name.endswith(suffix) and t.id != rotation.old_id]

    def issue(self, rotation: KeyRotation) -> Issued:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the current token")
        old = self.admin.get_token(rotation.old_id)
        if old is None:
            raise RotationFailed(
                f"{rotation.key}: the current token {rotation.old_id} no longer exists, so its "
                "policies are unknown; create the runtime token by hand and delete the state entry"
            )
        for orphan in self._orphans(rotation):  # created by an interrupted issue; its value was never recorded
            self.admin.delete_token(orphan.id)
        created = self.admin.create_token(self._name(old.name, rotation), old.policies)
        return Issued(created.info.id, created.info.name, protect(created.value, f"new:{rotation.key}"))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        return None  # Cloudflare shows a token's value once, at creation: it cannot be read back

    def discard(self, rotation: KeyRotation) -> str:
        """Delete the new token whose value was lost with an interrupted run (it never reached the group)."""
        gone = [t.id for t in self._orphans(rotation)]
        if rotation.new_id and rotation.new_id not in gone and self.admin.get_token(rotation.new_id) is not None:
            gone.append(rotation.new_id)
        for token_id in gone:
            self.admin.delete_token(token_id)
        return (
            f"deleted token(s) {', '.join(gone)}: issued by the interrupted run, value not recoverable, never "
            "distributed"
            if gone
            else "the token issued by the interrupted run no longer exists"
        )

    def revoke(self, rotation: KeyRotation) -> str:
        if not rotation.old_id:
            raise RotationFailed(f"{rotation.key}: the state does not name the old token to delete")
        if rotation.old_id == self.admin.verify_token().id:
            raise RotationFailed(f"{rotation.key}: refusing to delete the runbooks' own admin token")
        if self.admin.get_token(rotation.old_id) is None:
            return f"API token {rotation.old_id} was already deleted"
        self.admin.delete_token(rotation.old_id)
        return f"deleted API token {rotation.old_id}"

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        if rotation.old_id and self.admin.get_token(rotation.old_id) is not None:
            return False, f"API token {rotation.old_id} still exists"
        if old_value is None:
            return True, f"API token {rotation.old_id} no longer exists (old value not held by this run: resumed)"
        try:
            self.verify(old_value)
        except ProviderError as e:
            return (e.status == 401), f"Cloudflare answers HTTP {e.status} to the previous token's verify"
        return False, "Cloudflare still accepts the previous token"


class OAuthSecretIssuer:
    """An OAuth client secret generated in the identity provider's console, read from ``source``. The old
    one is revoked by hand in that console (``manual_revoke``): the rotator waits for on-call's confirmation."""

    separate_revoke = True
    manual_revoke = True

    def __init__(self, source: str | None, resolve: Callable[[str], str]):
        self.source, self.resolve = source, resolve

    def identify(self, current: str) -> tuple[bool, str | None, str]:
        if not self.source:
            return False, None, "the inventory gives no source reference for the next client secret"
        nxt = self.resolve(self.source)
        if nxt == current:
            return (
                False,
                None,
                (
                    f"{self.source} holds the value already in the group: generate the next client "
                    "secret in the identity provider and store it there first"
                ),
            )
        return True, None, f"next client secret ready in {self.source} ({fingerprint(nxt)})"

    def issue(self, rotation: KeyRotation) -> Issued:
        if not self.source:
            raise RotationFailed(f"{rotation.key}: the inventory gives no source reference for the next secret")
        return Issued(None, None, self.resolve(self.source))

    def find_issued(self, rotation: KeyRotation) -> Issued | None:
        return self.issue(rotation) if self.source else None

    def revoke(self, rotation: KeyRotation) -> str:
        return (
            f"manual: delete the previous client secret in the identity provider's console ({rotation.old_fingerprint})"
        )

    def refused(self, rotation: KeyRotation, old_value: str | None) -> tuple[bool, str]:
        # the runbook has no API to the identity provider: it cannot prove the old secret refused
        return False, "not verifiable by the runbook: the identity provider has no API it can call"


# -- the rotation ------------------------------------------------------------------------------------
@dataclass
class StepRow:
    key: str
    step: str
    status: str  #: done | already done | re-issuing | awaiting manual revoke | confirmed by on-call | failed
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Plan:
    environment: str
    group: str
    group_id: str
    services: list[str]
    keys: list[RotatingKey]
    rotations: dict[str, KeyRotation]  #: resumed or fresh
    preflight: list[StepRow]
    old_values: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.preflight)

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

    def _preflight(self, plan: Plan, group: Any) -> list[StepRow]:
        rows: list[StepRow] = []
        services = self._service_objs(plan)
        for missing in sorted(set(plan.services) - set(services)):
            rows.append(StepRow("*", "preflight", "failed", f"service {missing} does not exist in Render"))
        for name in plan.services:
            if name not in group.service_names:
                rows.append(StepRow("*", "preflight", "failed", f"service {name} is not linked to {plan.group}"))
        health = {n: self.render.health(s) for n, s in services.items()}
        for name, (code, body) in health.items():
            gap = service_contract.gap(body) if code else None
            if gap:
                why = f"service {name} cannot be verified: {gap}; a rotation would have no proof it took"
                rows.append(StepRow("*", "preflight", "failed", why))
            elif code != 200 or not body.get("healthy"):
                why = f" ({body['error']})" if not code and body.get("error") else ""
                rows.append(StepRow("*", "preflight", "failed", f"service {name} is not healthy (HTTP {code}){why}"))
        for k in plan.keys:
            r = plan.rotations[k.name]
            resumed = bool(r.completed)
            if k.name not in group.env:
                rows.append(StepRow(k.name, "preflight", "failed", f"{k.name} is not in env group {plan.group}"))
                continue
            current = group.env[k.name]
            fp = fingerprint(current)
            on_services = [n for n, s in services.items() if k.name in self.render.service_env(s.id)]
            if on_services:
                rows.append(
                    StepRow(
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
                        StepRow(
                            k.name,
                            "preflight",
                            "failed",
                            f"service(s) {', '.join(stale)} do not run the group's current value ({fp}); "
                            "deploy them and re-run",
                        )
                    )
                known, old_id, detail = self.issuers[k.name].identify(current)
                if not known:
                    rows.append(StepRow(k.name, "preflight", "failed", detail))
                    continue
                r.old_id, r.old_fingerprint = old_id, fp
                plan.old_values[k.name] = current
                rows.append(StepRow(k.name, "preflight", "done", f"current {fp}: {detail}"))
            else:
                detail = f"resuming rotation started {r.started_at} (done: {', '.join(r.completed)}); group holds {fp}"
                if r.status == AWAITING_MANUAL_REVOKE:
                    detail += f"; {AWAITING_MANUAL_REVOKE}: " + (
                        "confirmed by on-call" if k.name in self.manual_revoked else "not confirmed yet"
                    )
                rows.append(StepRow(k.name, "preflight", "done", detail))
        return rows

    # -- apply ------------------------------------------------------------------------------------
    def _save(self, plan: Plan) -> None:
        saved = self.store.load()
        for k, r in plan.rotations.items():
            r.updated_at = utcnow()
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

    def apply(self, plan: Plan, *, on_row: Callable[[StepRow], None] | None = None) -> list[StepRow]:
        if not plan.ok:
            raise RotationRefused("preflight failed: nothing was changed")
        rows: list[StepRow] = []

        def emit(row: StepRow) -> None:
            rows.append(row)
            self.log(f"{row.key}: {row.step}: {row.status}: {row.detail}")
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

    def _issue(self, plan: Plan, emit: Callable[[StepRow], None]) -> dict[str, str]:
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
                    emit(StepRow(k.name, "issue", "re-issuing", detail))
                if r.done("issue"):
                    emit(StepRow(k.name, "issue", "already done", f"new credential {r.new_fingerprint} ({r.new_id})"))
                    continue
            if r.issuing:
                found = issuer.find_issued(r)
                if found is not None:
                    values[k.name] = found.value
                    r.new_id, r.new_fingerprint = found.id, fingerprint(found.value)
                    self._complete(plan, "issue", [k.name])
                    emit(
                        StepRow(
                            k.name,
                            "issue",
                            "already done",
                            f"found the credential issued by an interrupted run: {r.new_fingerprint}",
                        )
                    )
                    continue
            r.new_name = r.new_name or f"rotated_{datetime.now(UTC):%Y%m%d%H%M%S}"
            r.issuing = True
            self._save(plan)
            issued = issuer.issue(r)
            values[k.name] = issued.value
            r.new_id, r.new_fingerprint = issued.id, fingerprint(issued.value)
            self._complete(plan, "issue", [k.name])
            emit(
                StepRow(
                    k.name,
                    "issue",
                    "done",
                    f"new credential {r.new_fingerprint}" + (f" ({issued.id})" if issued.id else ""),
                )
            )
        return values

    def _write_group(self, plan: Plan, values: dict[str, str], emit: Callable[[StepRow], None]) -> None:
        group = self.render.env_group(plan.group)
        for k in plan.keys:
            r = plan.rotations[k.name]
            current = group.env.get(k.name)
            if current is not None and fingerprint(current) == r.new_fingerprint:
                if not r.done("write_group"):
                    self._complete(plan, "write_group", [k.name])
                emit(StepRow(k.name, "write_group", "already done", f"{plan.group} holds {r.new_fingerprint}"))
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
            emit(StepRow(k.name, "write_group", "done", f"{plan.group} now holds {r.new_fingerprint}"))

    def _deploy(self, plan: Plan, emit: Callable[[StepRow], None]) -> None:
        todo = [k.name for k in plan.keys if not plan.rotations[k.name].done("deploy")]
        if not todo:
            emit(StepRow("*", "deploy", "already done", "services were deployed with the new values"))
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
                StepRow(
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

    def _verify_services(self, plan: Plan, emit: Callable[[StepRow], None]) -> None:
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
                emit(StepRow(k.name, "verify_services", "failed" if p else "done", f"{name}: {p}" if p else ok))
        if problems:
            raise RotationFailed(
                "services do not run the new credential: "
                + "; ".join(f"{s} {p}" for s, p in problems.items())
                + ". The old credential was NOT revoked. Fix the service(s) (a service that ignores deploys needs "
                "a restart) and re-run to resume"
            )
        self._complete(plan, "verify_services", [k.name for k in todo])

    def _revoke(self, plan: Plan, emit: Callable[[StepRow], None]) -> None:
        for k in plan.keys:
            r, issuer = plan.rotations[k.name], self.issuers[k.name]
            if r.done("revoke_old"):
                emit(StepRow(k.name, "revoke_old", "already done", f"old credential {r.old_fingerprint}"))
                continue
            if getattr(issuer, "manual_revoke", False):
                if k.name not in self.manual_revoked:
                    r.status = AWAITING_MANUAL_REVOKE
                    self._save(plan)
                    emit(
                        StepRow(
                            k.name,
                            "revoke_old",
                            "awaiting manual revoke",
                            manual_instruction(r, plan.environment),
                        )
                    )
                    continue
                self._complete(plan, "revoke_old", [k.name])
                emit(
                    StepRow(
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
            emit(StepRow(k.name, "revoke_old", "done", detail))

    def _verify_refused(self, plan: Plan, emit: Callable[[StepRow], None]) -> None:
        for k in plan.keys:
            r, issuer = plan.rotations[k.name], self.issuers[k.name]
            if r.done("verify_old_refused") or not r.done("revoke_old"):
                continue  # done, or awaiting a manual revoke
            if getattr(issuer, "manual_revoke", False):
                self._complete(plan, "verify_old_refused", [k.name])
                emit(
                    StepRow(
                        k.name,
                        "verify_old_refused",
                        "confirmed by on-call",
                        f"{issuer.refused(r, None)[1]}; relies on on-call's confirmation ({MANUAL_PARAM}={k.name})",
                    )
                )
                continue
            refused, detail = issuer.refused(r, plan.old_values.get(k.name))
            emit(StepRow(k.name, "verify_old_refused", "done" if refused else "failed", detail))
            if not refused:
                raise RotationFailed(f"{k.name}: the old credential is still accepted: {detail}")
            self._complete(plan, "verify_old_refused", [k.name])


# -- construction from the inventory ----------------------------------------------------------------
def build_issuers(
    env: Environment,
    keys: list[RotatingKey],
    *,
    supabase: Any = None,
    cloudflare_admin: Any = None,
    cloudflare_verify: Callable[[str], Any] | None = None,
    resolve: Callable[[str], str] | None = None,
) -> dict[str, Issuer]:
    from runbooks.secrets import secret

    out: dict[str, Issuer] = {}
    for k in keys:
        if k.provider == "supabase":
            if supabase is None:
                from runbooks.providers.supabase_keys import SupabaseKeys

                supabase = SupabaseKeys.from_environment(env)
            out[k.name] = SupabaseKeyIssuer(supabase, k.kind)
        elif k.provider == "cloudflare":
            if cloudflare_admin is None or cloudflare_verify is None:
                from runbooks.providers.cloudflare import CloudflareProvider

                admin = cloudflare_admin or CloudflareProvider.from_environment(env)

                def verify(value: str) -> Any:
                    with CloudflareProvider(
                        env.endpoints.cloudflare_api, value, account_id=env.cloudflare_account_id, zone=env.zone
                    ) as p:
                        return p.verify_token()

                cloudflare_admin, cloudflare_verify = admin, cloudflare_verify or verify
            out[k.name] = CloudflareTokenIssuer(cloudflare_admin, cloudflare_verify)
        else:
            out[k.name] = OAuthSecretIssuer(k.source, resolve or secret)
    return out
