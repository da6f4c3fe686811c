"""The blue/green flip against the edge twin: plan, apply, DNS verification, rollback, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbooks.checks.base import Status
from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment
from runbooks.plan import authorise
from runbooks.procedures import flip
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.providers.dns import DnsResolver
from runbooks.providers.tls import TlsClient
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge


class Ctx:
    def __init__(self, e: RunningEdge):
        self.edge = e
        self.env: Environment = e.environment()
        self.auth = authorise(self.env.environment)  # what runbooks.guard_apply returns once it passed
        ep = self.env.endpoints
        self.cf = CloudflareProvider(
            ep.cloudflare_api, e.token, account_id=self.env.cloudflare_account_id, zone=self.env.zone
        )
        self.dns = DnsResolver(ep.dns_resolver)
        self.tls = TlsClient(ca_bundle=ep.ca_bundle, overrides=ep.https_overrides)

    def plan(self, hostname: str, colour: str) -> flip.Plan:
        return flip.plan(self.env, self.cf, self.tls, hostname, colour)

    def content(self, hostname: str) -> str:
        rec = self.cf.find_record(hostname)
        assert rec is not None
        return rec.content


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    """A fresh edge twin for a test that flips (changes records)."""
    with running_edge(tmp_path) as e:
        yield Ctx(e)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    """One edge twin shared by the tests that change nothing (plans, refusals, a no-op); each proves it."""
    with running_edge(tmp_path_factory.mktemp("edge")) as e:
        yield Ctx(e)


def test_dry_plan_changes_nothing(reader: Ctx) -> None:
    p = reader.plan("app.runspectral.com", "green")
    assert (p.current, p.new, p.proxied) == ("spectral-app-blue.onrender.com", "spectral-app-green.onrender.com", True)
    assert p.safe and not p.noop
    assert {r.check for r in p.preflight} == {"flip.record_type", "flip.posture", "flip.origin_health"}
    assert [row["change"] for row in p.rows()] == ["changes", "unchanged", "unchanged"]
    assert reader.content("app.runspectral.com") == "spectral-app-blue.onrender.com"


def served(ctx: Ctx, p: flip.Plan) -> tuple[Status, str]:
    r = flip.served_by(ctx.env, p, ctx.tls)
    return r.status, r.evidence


@pytest.mark.parametrize(("host", "proxied"), [("app", True), ("api", False)])
def test_flip_and_rollback_round_trip(ctx: Ctx, host: str, proxied: bool) -> None:
    name = f"{host}.runspectral.com"
    blue, green = f"spectral-{host}-blue.onrender.com", f"spectral-{host}-green.onrender.com"
    to_green = ctx.plan(name, "green")
    # before the flip the edge serves blue: the post-apply check would fail on it (it proves the change)
    status, evidence = served(ctx, to_green)
    assert status is Status.FAIL and f"answered by {blue} (blue)" in evidence
    out = flip.apply(to_green, ctx.auth, ctx.env, ctx.cf, ctx.dns, ctx.tls)
    assert out.applied and out.verified, out.verification
    assert [r.check for r in out.verification] == ["flip.record", "flip.dns", "flip.served_by"]
    assert f"answered by {green} (green)" in out.verification[-1].evidence
    assert out.previous == blue and out.record.content == green and out.record.proxied is proxied
    assert ctx.content(name) == green
    answer = ctx.dns.resolve(name, "A")
    if not proxied:  # DNS-only: the authoritative answer shows the new target
        assert answer.cname_chain[0] == green

    back = ctx.plan(name, "rollback")
    assert (back.current, back.new) == (green, blue)
    assert served(ctx, back)[0] is Status.FAIL  # green answers until the rollback
    out2 = flip.apply(back, ctx.auth, ctx.env, ctx.cf, ctx.dns, ctx.tls)
    assert out2.verified and ctx.content(name) == blue
    assert f"answered by {blue} (blue)" in out2.verification[-1].evidence
    rec = ctx.cf.find_record(name)
    assert rec is not None and rec.proxied is proxied and rec.type == "CNAME"


def test_flip_to_current_colour_is_a_noop(reader: Ctx) -> None:
    p = reader.plan("app", "blue")
    assert p.noop
    before = [(r.name, r.content, r.proxied) for r in reader.cf.list_records()]
    out = flip.apply(p, reader.auth, reader.env, reader.cf, reader.dns, reader.tls)
    assert not out.applied and out.verified
    assert [(r.name, r.content, r.proxied) for r in reader.cf.list_records()] == before


@pytest.mark.parametrize(
    ("hostname", "colour", "param", "message"),
    [
        ("www.runspectral.com", "green", "hostname", "hostname (value not shown): not a hostname"),
        ("www", "green", "hostname", "hostname (value not shown): not a hostname"),
        ("ops.runspectral.com", "green", "hostname", "hostname='ops.runspectral.com': has no blue/green origins"),
        ("app.runspectral.com", "purple", "colour", "colour (value not shown): not a colour"),
        ("app.runspectral.com", "rollback", "colour", "colour='rollback': app.runspectral.com carries no previous"),
    ],
)
def test_refused_inputs_name_the_parameter_and_change_nothing(
    reader: Ctx, hostname: str, colour: str, param: str, message: str
) -> None:
    before = [(r.name, r.content, r.proxied) for r in reader.cf.list_records()]
    with pytest.raises(BadParameter) as err:
        reader.plan(hostname, colour)
    assert err.value.name == param and str(err.value).startswith(message)
    assert "set " in err.value.fix or "colour=blue" in err.value.fix
    assert [(r.name, r.content, r.proxied) for r in reader.cf.list_records()] == before


def test_unhealthy_target_fails_preflight_and_apply_refuses(ctx: Ctx) -> None:
    r = httpx.patch(
        ctx.edge.state.address.replace("/client/v4", "") + "/_twin/origins/spectral-app-green.onrender.com",
        json={"healthy": False},
        headers={"Authorization": f"Bearer {ctx.edge.token}"},
    )
    assert r.status_code == 200
    p = ctx.plan("app", "green")
    health = next(r for r in p.preflight if r.check == "flip.origin_health")
    assert health.status is Status.FAIL and "503" in health.evidence and not p.safe
    with pytest.raises(flip.FlipRefused, match="preflight failed: nothing was changed"):
        flip.apply(p, ctx.auth, ctx.env, ctx.cf, ctx.dns, ctx.tls)
    assert ctx.content("app") == "spectral-app-blue.onrender.com"


def test_record_changed_since_plan_is_refused(ctx: Ctx) -> None:
    p = ctx.plan("api", "green")
    rec = ctx.cf.find_record("api.runspectral.com")
    assert rec is not None
    ctx.cf.edit_record(rec, content="spectral-api-green.onrender.com")
    with pytest.raises(flip.FlipRefused, match="changed since the plan"):
        flip.apply(p, ctx.auth, ctx.env, ctx.cf, ctx.dns, ctx.tls)


def test_wrong_posture_fails_preflight(tmp_path: Path) -> None:
    with running_edge(tmp_path, ["api-proxied"]) as e:
        c = Ctx(e)
        p = c.plan("api", "green")
        posture = next(r for r in p.preflight if r.check == "flip.posture")
        assert posture.status is Status.FAIL and "required posture is dns_only" in posture.evidence
        with pytest.raises(flip.FlipRefused, match=r"flip\.posture"):
            flip.apply(p, c.auth, c.env, c.cf, c.dns, c.tls)
        assert c.content("api") == "spectral-api-blue.onrender.com"
