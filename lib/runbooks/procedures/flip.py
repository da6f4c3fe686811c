"""Blue/green flip of a hostname's CNAME, split into plan and apply (like octoDNS: plan, then apply).

``plan(env, cf, tls, hostname, colour)`` reads the record and runs the preflight (the record is a
CNAME; its proxied flag is the required posture and stays unchanged; the target origin answers its
health path), and returns a :class:`Plan` (a :class:`runbooks.plan.Plan`): current content -> new content.
``apply(plan, authorisation, env, cf, resolver, tls)`` (``authorisation`` is what ``runbooks.guard_apply``
returned; see :mod:`runbooks.plan`) edits only the record's content, stamps the
previous target into the record's comment, then checks that the change took: through the authoritative DNS
(DNS-only: the CNAME names the new target; proxied: answers inside Cloudflare's ranges), and through the
edge, since for a proxied hostname DNS alone proves nothing: a request to the hostname's health path must be
answered by the new colour's origin (its ``/healthz`` names the origin and its colour).

``colour`` is ``blue``, ``green`` or ``rollback``. Rollback restores exactly the target the last flip
replaced, read from the record's comment (``flip-blue-green: previous=<target>``), which the runbook
also records in the run record. An unusable parameter (unknown hostname, a hostname without blue/green
origins, an unknown colour, a rollback with nothing to restore) is refused with
:class:`runbooks.errors.BadParameter` naming the parameter and the fix; a failed preflight or a record
changed since the plan raises :class:`FlipRefused`. Both change nothing.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from runbooks import redact
from runbooks.checks.base import CheckResult, Status
from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment, Hostname, Posture
from runbooks.plan import Authorisation, UnsafePlan, require
from runbooks.plan import Plan as BasePlan
from runbooks.providers.base import ProviderError
from runbooks.providers.cloudflare import CloudflareProvider, DnsRecord
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import TlsClient

COLOURS = ("blue", "green")
ROLLBACK = "rollback"
PREVIOUS_MARK = "flip-blue-green: previous="


class FlipRefused(UnsafePlan, ValueError):
    """The flip cannot go ahead (failed preflight, record changed since the plan); nothing was changed.

    A :class:`runbooks.errors.Refused`: the runner records it as ``refused`` (exit 2)."""


@dataclass(frozen=True)
class Plan(BasePlan):
    refusal = FlipRefused
    fix = "bring the target origin up, or fix the posture (check-dns-posture), then re-run"

    environment: str
    hostname: str
    colour: str  #: as asked: blue, green or rollback
    record_id: str
    record_type: str
    current: str  #: the record's content now
    new: str  #: the content after the flip
    proxied: bool  #: unchanged by the flip
    preflight: tuple[CheckResult, ...] = ()

    @property
    def noop(self) -> bool:
        return self.current == self.new

    def problems(self) -> list[str]:
        """The failed preflight checks."""
        return [f"{r.check} [{r.subject}]: {r.evidence}" for r in self.preflight if r.status is Status.FAIL]

    def rows(self) -> list[dict[str, Any]]:
        """The plan as a table: one row per field, current -> new."""
        return [
            {
                "field": "content",
                "current": self.current,
                "new": self.new,
                "change": "unchanged" if self.noop else "changes",
            },
            {"field": "proxied", "current": self.proxied, "new": self.proxied, "change": "unchanged"},
            {"field": "type", "current": self.record_type, "new": self.record_type, "change": "unchanged"},
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "hostname": self.hostname,
            "colour": self.colour,
            "record_id": self.record_id,
            "current": self.current,
            "new": self.new,
            "proxied": self.proxied,
            "noop": self.noop,
            "preflight": [r.as_dict() for r in self.preflight],
        }


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    applied: bool
    previous: str  #: what the record pointed at before (restored by colour=rollback)
    record: DnsRecord  #: the record as read back after the edit
    verification: list[CheckResult] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return all(r.status is Status.PASS for r in self.verification)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.plan.hostname,
            "applied": self.applied,
            "previous": self.previous,
            "new": self.record.content,
            "proxied": self.record.proxied,
            "verified": self.verified,
            "verification": [r.as_dict() for r in self.verification],
        }


def flippable(env: Environment) -> list[Hostname]:
    return [h for h in env.hostnames if h.blue_green]


def resolve_hostname(env: Environment, hostname: str) -> Hostname:
    names = ", ".join(h.name for h in flippable(env)) or "(none)"
    try:
        h = env.hostname(hostname.strip())
    except KeyError:
        raise BadParameter(
            "hostname",
            hostname,
            f"not a hostname of the {env.environment} inventory",
            f"set hostname to one of: {names}",
        ) from None
    if not h.blue_green:
        raise BadParameter(
            "hostname",
            h.name,
            "has no blue/green origins in the inventory (it is not routed by flipping a CNAME)",
            f"set hostname to one of: {names}",
            allowed=[x.name for x in env.hostnames],
        )
    return h


def previous_target(record: DnsRecord) -> str | None:
    """The target the last flip replaced, from the record's comment."""
    c = record.comment or ""
    return c.split(PREVIOUS_MARK, 1)[1].split()[0] if PREVIOUS_MARK in c else None


def _preflight(h: Hostname, record: DnsRecord, new: str, tls: TlsClient) -> list[CheckResult]:
    out = []
    if record.type == "CNAME":
        out.append(CheckResult.ok("flip.record_type", h.name, f"CNAME -> {record.content}"))
    else:
        out.append(
            CheckResult.fail(
                "flip.record_type",
                h.name,
                f"record is {record.type} {record.content}",
                f"make {h.name} a CNAME to its origin before flipping",
            )
        )
    want = h.posture is Posture.PROXIED
    if record.proxied == want:
        out.append(
            CheckResult.ok(
                "flip.posture", h.name, f"proxied={str(record.proxied).lower()} as required; the flip keeps it"
            )
        )
    else:
        out.append(
            CheckResult.fail(
                "flip.posture",
                h.name,
                f"proxied={str(record.proxied).lower()} but the required posture is {h.posture.value}",
                "fix the posture first (run check-dns-posture), then flip",
            )
        )
    try:
        r = tls.request(new, "GET", h.health_path)
        status, detail = r.status_code, redact.cut(r.text, 120)
    except ProviderError as e:
        status, detail = None, str(e)
    if status == 200:
        out.append(CheckResult.ok("flip.origin_health", new, f"GET {h.health_path} -> 200"))
    else:
        out.append(
            CheckResult.fail(
                "flip.origin_health",
                new,
                f"GET {h.health_path} -> {status if status is not None else 'no answer'}: {detail}",
                f"bring {new} up and healthy (deploy, check its logs) before flipping to it",
            )
        )
    return out


def plan(env: Environment, cf: CloudflareProvider, tls: TlsClient, hostname: str, colour: str) -> Plan:
    """Read the record, choose the new target, run the preflight. Changes nothing."""
    given, colour = colour, colour.strip().lower()
    if colour not in (*COLOURS, ROLLBACK):
        raise BadParameter("colour", given, "not a colour", "set colour to blue, green or rollback")
    h = resolve_hostname(env, hostname)
    assert h.blue_green is not None
    record = cf.find_record(h.name)
    if record is None:
        raise FlipRefused(
            f"hostname={h.name!r} has no record in zone {env.zone}; create it "
            f"(CNAME -> {h.target}) or run check-dns-posture"
        )
    if colour == ROLLBACK:
        new = previous_target(record)
        if new is None:
            raise BadParameter(
                "colour",
                ROLLBACK,
                f"{h.name} carries no previous target (no flip recorded on the record)",
                "flip to an explicit colour instead: colour=blue or colour=green",
                allowed=(*COLOURS, ROLLBACK),
            )
        if new not in h.blue_green.values():
            raise BadParameter(
                "colour",
                ROLLBACK,
                f"the recorded previous target {new!r} is not one of {h.name}'s origins "
                f"({', '.join(h.blue_green.values())})",
                "flip to colour=blue or colour=green",
                allowed=(*COLOURS, ROLLBACK),
            )
    else:
        new = h.blue_green[colour]  # type: ignore[index]  # colour was validated as blue or green above
    return Plan(
        environment=env.environment,
        hostname=h.name,
        colour=colour,
        record_id=record.id,
        record_type=record.type,
        current=record.content,
        new=new,
        proxied=record.proxied,
        preflight=tuple(_preflight(h, record, new, tls)),
    )


def served_by(env: Environment, p: Plan, tls: TlsClient) -> CheckResult:
    """Which origin answers a request to ``p.hostname`` through the edge now: its health path must be answered
    by ``p.new`` (the origin's ``/healthz`` names itself and its colour, in the body or the
    ``X-Spectral-Origin`` / ``X-Spectral-Colour`` headers)."""
    h = env.hostname(p.hostname)
    colours = {target: colour for colour, target in (h.blue_green or {}).items()}
    want_colour = colours.get(p.new)
    try:
        r = tls.request(p.hostname, "GET", h.health_path)
    except ProviderError as e:
        return CheckResult.fail(
            "flip.served_by",
            p.hostname,
            f"GET https://{p.hostname}{h.health_path}: no answer ({e})",
            "check the edge and the origin; if the hostname stays down, roll back with colour=rollback",
        )
    try:
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    except ValueError:
        body = {}
    origin = r.headers.get("x-spectral-origin") or (body.get("origin") if isinstance(body, dict) else None)
    colour = r.headers.get("x-spectral-colour") or (body.get("colour") if isinstance(body, dict) else None)
    seen = f"GET https://{p.hostname}{h.health_path} -> {r.status_code}, answered by {origin or '?'} ({colour or '?'})"
    if r.status_code == 200 and (origin == p.new or (origin is None and colour and colour == want_colour)):
        return CheckResult.ok("flip.served_by", p.hostname, f"{seen}: the {want_colour or 'new'} origin")
    return CheckResult.fail(
        "flip.served_by",
        p.hostname,
        f"{seen}; expected {p.new} ({want_colour or '?'})",
        "the edge still sends traffic elsewhere: wait for the change to reach the edge and re-check; if it does "
        "not, roll back with colour=rollback",
    )


def verify(
    env: Environment, p: Plan, cf: CloudflareProvider, resolver: DnsResolver, tls: TlsClient
) -> list[CheckResult]:
    """What the API, the authoritative DNS and the edge say now about ``p.hostname`` (one pass, no waiting)."""
    out = []
    rec = cf.get_record(p.record_id)
    if rec.content == p.new and rec.proxied == p.proxied:
        out.append(CheckResult.ok("flip.record", p.hostname, f"API: CNAME -> {rec.content}, proxied={rec.proxied}"))
    else:
        out.append(
            CheckResult.fail(
                "flip.record",
                p.hostname,
                f"API: CNAME -> {rec.content}, proxied={rec.proxied}; expected {p.new}, proxied={p.proxied}",
                "re-run the flip, or roll back with colour=rollback",
            )
        )
    answer = resolver.resolve(p.hostname, "A")
    if p.proxied:
        nets = [ipaddress.ip_network(c) for c in cf.ip_ranges().ipv4]
        inside = bool(answer.addresses) and all(
            any(ipaddress.ip_address(a) in n for n in nets) for a in answer.addresses
        )
        origin = resolver.resolve(p.new, "A")
        ok = inside and bool(origin.addresses)
        seen = (
            f"{p.hostname} answers {', '.join(answer.addresses) or answer.rcode} (Cloudflare's ranges: "
            f"{inside}); {p.new} answers {', '.join(origin.addresses) or origin.rcode}"
        )
    else:
        ok = bool(answer.cname_chain) and answer.cname_chain[0] == p.new and bool(answer.addresses)
        seen = (
            f"{p.hostname} -> {' -> '.join(answer.cname_chain) or '(no CNAME)'} -> "
            f"{', '.join(answer.addresses) or answer.rcode}"
        )
    if ok:
        out.append(CheckResult.ok("flip.dns", p.hostname, f"authoritative DNS ({resolver.description}): {seen}"))
    else:
        out.append(
            CheckResult.fail(
                "flip.dns",
                p.hostname,
                f"authoritative DNS ({resolver.description}): {seen}",
                "wait for the edit to propagate and re-check; if it does not, roll back with colour=rollback",
            )
        )
    out.append(served_by(env, p, tls))
    return out


def apply(
    p: Plan,
    authorisation: Authorisation,
    env: Environment,
    cf: CloudflareProvider,
    resolver: DnsResolver,
    tls: TlsClient,
    *,
    wait_s: float = 15.0,
) -> Outcome:
    """Edit the record as planned (``authorisation``: what ``runbooks.guard_apply`` returned), then verify
    through the authoritative DNS and through the edge (the new colour's origin answers the hostname)."""
    require(p, authorisation)
    record = cf.get_record(p.record_id)
    if record.content != p.current or record.proxied != p.proxied:
        raise FlipRefused(
            f"{p.hostname} changed since the plan (now -> {record.content}, proxied={record.proxied});"
            " nothing changed: re-run to plan again"
        )
    if p.noop:
        return Outcome(
            p, applied=False, previous=record.content, record=record, verification=verify(env, p, cf, resolver, tls)
        )
    edited = cf.edit_record(record, content=p.new, proxied=p.proxied, comment=f"{PREVIOUS_MARK}{p.current}")
    deadline = time.monotonic() + wait_s
    while True:
        checks = verify(env, p, cf, resolver, tls)
        if all(r.status is Status.PASS for r in checks) or time.monotonic() > deadline:
            return Outcome(p, applied=True, previous=p.current, record=edited, verification=checks)
        time.sleep(0.5)
