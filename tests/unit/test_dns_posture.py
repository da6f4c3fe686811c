"""Every edge posture check, pass and fail, driven by the edge twin (clean, faulted, or edited)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.checks.base import CheckResult, Status, fail_on_fail, run_checks
from runbooks.checks.dns_posture import build_checks, check_min_cert_days, select_hostnames
from runbooks.errors import BadParameter
from runbooks.inventory.loader import load
from runbooks.inventory.models import Environment, Hostname, Posture
from runbooks.providers.cloudflare import PUBLISHED_IPV4, CloudflareProvider
from runbooks.providers.dns import DnsResolver, Resolution
from runbooks.providers.tls import TlsClient
from runbooks.sandbox.edge.standalone import RunningEdge, running_edge

ALL_FAULTS = [
    "api-proxied",
    "app-dns-only",
    "cert-expiring",
    "cert-wrong-name",
    "ssl-flexible",
    "cookie-host-only",
    "codex-no-function",
]


def providers(e: RunningEdge, env: Environment) -> tuple[CloudflareProvider, DnsResolver, TlsClient]:
    cf = CloudflareProvider(env.endpoints.cloudflare_api, e.token, account_id=env.cloudflare_account_id, zone=env.zone)
    return (
        cf,
        DnsResolver(env.endpoints.dns_resolver),
        TlsClient(ca_bundle=env.endpoints.ca_bundle, overrides=env.endpoints.https_overrides),
    )


def run(e: RunningEdge, **kw: object) -> dict[tuple[str, str], CheckResult]:
    env = e.environment()
    results = run_checks(build_checks(env, *providers(e, env), **kw))  # type: ignore[arg-type]
    out = {(r.check, r.subject.split(".")[0]): r for r in results}
    assert len(out) == len(results), "one row per (check, subject)"
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("clean")) as e:
        yield e


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    with running_edge(tmp_path_factory.mktemp("faulted"), ALL_FAULTS) as e:
        yield e


@pytest.fixture(scope="module")
def clean_results(clean: RunningEdge) -> dict[tuple[str, str], CheckResult]:
    return run(clean)


@pytest.fixture(scope="module")
def faulted_results(faulted: RunningEdge) -> dict[tuple[str, str], CheckResult]:
    return run(faulted)


def test_clean_twin_passes_every_check(clean_results: dict[tuple[str, str], CheckResult]) -> None:
    failed = [r for r in clean_results.values() if r.status is not Status.PASS]
    assert not failed, failed
    expected = {
        ("dns.record", "app"),
        ("dns.proxied", "api"),
        ("dns.resolution", "codex"),
        ("tls.chain", "docs"),
        ("tls.name", "ops"),
        ("tls.expiry", "app"),
        ("zone.ssl", "runspectral"),
        ("zone.always_use_https", "runspectral"),
        ("zone.min_tls_version", "runspectral"),
        ("pages.project", "codex"),
        ("pages.project", "docs"),
        ("pages.function", "codex"),
        ("cookie.session", "app"),
        ("cookie.session", "ops"),
        ("sse.unbuffered", "api"),
    }
    assert expected <= set(clean_results)
    fail_on_fail(list(clean_results.values()))  # does not raise


@pytest.mark.parametrize(
    ("check", "label", "evidence"),
    [
        ("dns.proxied", "api", "record is proxied; required posture is DNS-only"),
        ("dns.resolution", "api", "inside"),
        ("sse.unbuffered", "api", "buffered"),
        ("dns.proxied", "app", "record is DNS-only; required posture is proxied"),
        ("dns.resolution", "app", "required posture is proxied"),
        ("tls.expiry", "app", "3.0 days left"),
        ("tls.name", "ops", "not ops.runspectral.com"),
        ("zone.ssl", "runspectral", "flexible"),
        ("cookie.session", "app", "host-only"),
        ("pages.function", "codex", "uses_functions=False"),
    ],
)
def test_each_fault_fails_its_check(
    faulted_results: dict[tuple[str, str], CheckResult], check: str, label: str, evidence: str
) -> None:
    r = faulted_results[(check, label)]
    assert r.status is Status.FAIL, r
    assert evidence in r.evidence
    assert r.remediation


def test_faults_do_not_fail_unrelated_checks(faulted_results: dict[tuple[str, str], CheckResult]) -> None:
    for key in [
        ("dns.record", "api"),
        ("dns.proxied", "docs"),
        ("tls.chain", "app"),
        ("tls.expiry", "ops"),
        ("zone.min_tls_version", "runspectral"),
        ("pages.project", "codex"),
    ]:
        assert faulted_results[key].status is Status.PASS, faulted_results[key]


def test_min_cert_days_is_a_threshold(clean: RunningEdge) -> None:
    assert run(clean, min_cert_days=100)[("tls.expiry", "app")].status is Status.FAIL
    assert run(clean, min_cert_days=80)[("tls.expiry", "app")].status is Status.PASS


def test_untrusted_chain_fails(clean: RunningEdge) -> None:
    env = clean.environment()
    cf, dns, _ = providers(clean, env)
    system_store = TlsClient(overrides=env.endpoints.https_overrides)  # the twin CA is not trusted
    h = env.hostname("docs")
    rows = {r.check: r for r in run_checks(build_checks(env, cf, dns, system_store, hostnames=[h]))}
    assert rows["tls.chain"].status is Status.FAIL and "unable to get local issuer" in rows["tls.chain"].evidence
    assert rows["tls.name"].status is Status.PASS


@pytest.fixture
def edited(tmp_path: Path) -> Iterator[tuple[RunningEdge, CloudflareProvider]]:
    with running_edge(tmp_path) as e:
        env = e.environment()
        yield e, providers(e, env)[0]


def test_record_missing_wrong_type_wrong_target(edited: tuple[RunningEdge, CloudflareProvider]) -> None:
    e, cf = edited
    env = e.environment()
    missing = Hostname(name="www.runspectral.com", audience="x", posture=Posture.PROXIED, target="w.onrender.com")
    wrong_type = env.hostname("ops").model_copy(update={"record_type": "A"})
    rows = run_checks(build_checks(env, *providers(e, env), hostnames=[missing, wrong_type]))
    by = {(r.check, r.subject): r for r in rows}
    assert by[("dns.record", "www.runspectral.com")].status is Status.FAIL
    assert "no A, AAAA or CNAME record" in by[("dns.record", "www.runspectral.com")].evidence
    assert by[("dns.resolution", "www.runspectral.com")].status is Status.FAIL
    assert "NXDOMAIN" in by[("dns.resolution", "www.runspectral.com")].evidence
    assert by[("dns.record", "ops.runspectral.com")].status is Status.FAIL
    assert "expected A" in by[("dns.record", "ops.runspectral.com")].evidence

    rec = cf.find_record("ops.runspectral.com")
    assert rec is not None
    cf.edit_record(rec, content="spectral-elsewhere.onrender.com")
    ops = run(e)[("dns.record", "ops")]
    assert ops.status is Status.FAIL and "spectral-ops.onrender.com" in ops.evidence


def test_flipped_blue_green_record_still_passes(edited: tuple[RunningEdge, CloudflareProvider]) -> None:
    e, cf = edited
    rec = cf.find_record("app.runspectral.com")
    assert rec is not None
    cf.edit_record(rec, content="spectral-app-green.onrender.com")
    r = run(e)[("dns.record", "app")]
    assert r.status is Status.PASS and "(green)" in r.evidence


def test_pages_record_not_on_project_fails(edited: tuple[RunningEdge, CloudflareProvider]) -> None:
    e, cf = edited
    rec = cf.find_record("codex.runspectral.com")
    assert rec is not None
    cf.edit_record(rec, content="spectral-docs.pages.dev")
    r = run(e)[("pages.project", "codex")]
    assert r.status is Status.FAIL and "not the project's spectral-codex.pages.dev" in r.evidence


def test_zone_settings_fail_paths(edited: tuple[RunningEdge, CloudflareProvider]) -> None:
    e, cf = edited
    cf.set_setting("always_use_https", "off")
    cf.set_setting("min_tls_version", "1.0")
    r = run(e)
    assert r[("zone.always_use_https", "runspectral")].status is Status.FAIL
    assert r[("zone.min_tls_version", "runspectral")].status is Status.FAIL
    cf.set_setting("min_tls_version", "1.3")
    assert run(e)[("zone.min_tls_version", "runspectral")].status is Status.PASS


class _Answers(DnsResolver):
    """A resolver that returns fixed answers (what no consistent twin serves: stale or mixed answers)."""

    def __init__(self, addresses: tuple[str, ...]):
        super().__init__(None)
        self._addresses = addresses

    def addresses(self, name: str) -> Resolution:
        return Resolution(name, "A+AAAA", "NOERROR", (), self._addresses, True, "udp")


@pytest.mark.parametrize(
    ("addresses", "evidence"),
    [
        (("198.18.0.7",), "resolution disagrees with the flag"),
        (("104.16.0.9", "198.18.0.7"), "mixed answers"),
    ],
)
def test_resolution_disagreeing_with_flag_fails(clean: RunningEdge, addresses: tuple[str, ...], evidence: str) -> None:
    env = clean.environment()
    cf, _, tls = providers(clean, env)
    [fn] = [
        c
        for c in build_checks(env, cf, _Answers(addresses), tls, hostnames=[env.hostname("app")])
        if c.check_id == "dns.resolution"
    ]
    r = fn()
    assert isinstance(r, CheckResult) and r.status is Status.FAIL and evidence in r.evidence


def test_ranges_fall_back_to_the_built_in_list() -> None:
    cf = CloudflareProvider(
        "http://127.0.0.1:9/client/v4", "unused", account_id="a", zone="z", timeout=0.5, max_retries=0
    )
    ranges = cf.ip_ranges()
    assert ranges.source == "built-in list" and ranges.ipv4 == PUBLISHED_IPV4


def test_a_check_that_cannot_run_is_a_fail_row(clean: RunningEdge) -> None:
    env = clean.environment()
    cf = CloudflareProvider(
        env.endpoints.cloudflare_api, "wrong-token", account_id=env.cloudflare_account_id, zone=env.zone, max_retries=0
    )
    _, dns, tls = providers(clean, env)
    rows = run_checks(build_checks(env, cf, dns, tls, hostnames=[env.hostname("api")]))
    rec = next(r for r in rows if r.check == "dns.record")
    assert rec.status is Status.FAIL and "Authentication error" in rec.evidence
    assert "wrong-token" not in " ".join(r.evidence for r in rows)


def test_hostname_selection_refuses_unknown_names() -> None:
    env = load("production")
    assert select_hostnames(env, "") == list(env.hostnames)
    assert [h.name for h in select_hostnames(env, " api ")] == ["api.runspectral.com"]
    assert [h.name for h in select_hostnames(env, "codex.runspectral.com")] == ["codex.runspectral.com"]
    with pytest.raises(BadParameter) as e:
        select_hostnames(env, "www")
    assert e.value.name == "hostname" and str(e.value).startswith(
        "hostname (value not shown): not a hostname of the production"
    )
    assert "app, ops, api, docs, codex" in e.value.fix and "leave it empty" in e.value.fix
    assert check_min_cert_days(0) == 0
    needle = r"^min_cert_days \(value not shown\): a negative number of days; give 0 or more"
    with pytest.raises(BadParameter, match=needle):
        check_min_cert_days(-3)


def test_probe_paths_come_from_the_inventory(clean: RunningEdge) -> None:
    """The sign-in and events paths are inventory settings (``probes``), not constants of the check."""
    env = clean.environment()
    moved = env.model_copy(
        update={"probes": env.probes.model_copy(update={"sign_in_path": "/login", "events_path": "/stream"})}
    )
    cf, dns, tls = providers(clean, moved)
    rows = {
        r.check: r
        for r in run_checks(build_checks(moved, cf, dns, tls, hostnames=[moved.hostname("app"), moved.hostname("api")]))
    }
    # the twin serves the contract's default paths only: the moved ones are probed, and fail
    assert rows["cookie.session"].status is Status.FAIL and "/login" in rows["cookie.session"].evidence
    assert rows["sse.unbuffered"].status is Status.FAIL and "/stream" in rows["sse.unbuffered"].evidence
    default = {r.check: r for r in run_checks(build_checks(env, cf, dns, tls, hostnames=[env.hostname("app")]))}
    assert default["cookie.session"].status is Status.PASS
