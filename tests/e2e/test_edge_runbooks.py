"""check-dns-posture and flip-blue-green, run through the runner against the twin (clean and faulted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runner_fixtures import outcome_manifest as manifest

from runbooks.archive.manifest import RunStatus
from runbooks.providers.cloudflare import CloudflareProvider
from runbooks.runner.run import RunOutcome, run_procedure
from runbooks.sandbox.fixture import Sandbox

pytestmark = [pytest.mark.sandbox]


def archived_text(out: RunOutcome) -> str:
    assert out.run_dir is not None
    return "\n".join(p.read_text(errors="replace") for p in Path(out.run_dir).rglob("*") if p.is_file())


def cloudflare(sbx: Sandbox) -> CloudflareProvider:
    env = sbx.inventory()
    return CloudflareProvider(
        env.endpoints.cloudflare_api,
        sbx.secret("cloudflare_api_token"),
        account_id=env.cloudflare_account_id,
        zone=env.zone,
    )


def content(sbx: Sandbox, name: str) -> tuple[str, bool]:
    rec = cloudflare(sbx).find_record(name)
    assert rec is not None
    return rec.content, rec.proxied


def test_posture_passes_on_the_twin(sandbox: Sandbox, archive: Path) -> None:
    out = run_procedure("check-dns-posture", params={"min_cert_days": "14"}, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.SUCCEEDED, m.get("error")
    assert m["results"]["counts"] == {"PASS": len(m["results"]["checks"]), "WARN": 0, "FAIL": 0}
    subjects = {r["subject"] for r in m["results"]["checks"]}
    assert {f"{h}.runspectral.com" for h in ("app", "ops", "api", "docs", "codex")} <= subjects
    assert sandbox.secret("cloudflare_api_token") not in archived_text(out)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hostname": "www"},
            "hostname (value not shown): not a hostname of the sandbox inventory; give one of: app, ",
        ),
        ({"min_cert_days": "-1"}, "min_cert_days (value not shown): a negative number of days"),
    ],
)
def test_posture_refuses_bad_parameters(sandbox: Sandbox, archive: Path, params: dict[str, str], message: str) -> None:
    out = run_procedure("check-dns-posture", params=params, archive_root=archive)
    assert out.status is RunStatus.REFUSED and out.exit_code == 2, manifest(out).get("error")
    assert out.error is not None and out.error.kind == "BadParameter"
    assert out.error.message.startswith(message), out.error.message
    assert "checks" not in manifest(out).get("results", {})  # nothing was checked


def test_min_cert_days_parameter(sandbox: Sandbox, archive: Path) -> None:
    out = run_procedure("check-dns-posture", params={"min_cert_days": "365", "hostname": "docs"}, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.FAILED
    assert [r["check"] for r in m["results"]["checks"] if r["status"] == "FAIL"] == ["tls.expiry"]


def served_by(m: dict[str, Any]) -> dict[str, Any]:
    [row] = [r for r in m["results"]["flip"]["verification"] if r["check"] == "flip.served_by"]
    return dict(row)


@pytest.mark.parametrize(("host", "proxied"), [("api", False), ("app", True)])
def test_flip_dry_run_apply_and_rollback(sandbox: Sandbox, archive: Path, host: str, proxied: bool) -> None:
    name = f"{host}.runspectral.com"
    blue, green = f"spectral-{host}-blue.onrender.com", f"spectral-{host}-green.onrender.com"
    assert content(sandbox, name) == (blue, proxied)

    dry = run_procedure("flip-blue-green", params={"hostname": host, "colour": "green"}, archive_root=archive)
    assert dry.status is RunStatus.SUCCEEDED
    plan = manifest(dry)["results"]["plan"]
    assert (plan["current"], plan["new"], plan["proxied"]) == (blue, green, proxied)
    assert all(r["status"] == "PASS" for r in plan["preflight"])
    assert content(sandbox, name) == (blue, proxied)  # a dry run changes nothing

    flipped = run_procedure(
        "flip-blue-green",
        params={"hostname": host, "colour": "green", "apply": "true", "confirm": "sandbox"},
        archive_root=archive,
    )
    m = manifest(flipped)
    assert flipped.status is RunStatus.SUCCEEDED, m.get("error")
    assert m["results"]["previous_target"] == blue
    assert m["results"]["flip"]["verified"] is True and m["results"]["flip"]["new"] == green
    # the edge itself answers from the green origin now (for a proxied hostname DNS cannot show it)
    assert served_by(m)["status"] == "PASS" and f"answered by {green} (green)" in served_by(m)["evidence"]
    assert content(sandbox, name) == (green, proxied)
    # the posture still holds after the flip
    posture = run_procedure("check-dns-posture", params={"hostname": host}, archive_root=archive)
    assert posture.status is RunStatus.SUCCEEDED

    back = run_procedure(
        "flip-blue-green",
        params={"hostname": host, "colour": "rollback", "apply": "true", "confirm": "sandbox"},
        archive_root=archive,
    )
    mb = manifest(back)
    assert back.status is RunStatus.SUCCEEDED, mb.get("error")
    assert mb["results"]["plan"]["new"] == blue and mb["results"]["flip"]["previous"] == green
    assert served_by(mb)["status"] == "PASS" and f"answered by {blue} (blue)" in served_by(mb)["evidence"]
    assert content(sandbox, name) == (blue, proxied)


@pytest.mark.parametrize(
    ("params", "kind", "message"),
    [
        ({"hostname": "www.runspectral.com"}, "BadParameter", "hostname (value not shown): not a hostname"),
        ({"hostname": "www", "colour": "blue"}, "BadParameter", "hostname (value not shown): not a hostname"),
        ({"hostname": "docs"}, "BadParameter", "hostname='docs.runspectral.com': has no blue/green origins"),
        ({"colour": "purple"}, None, "colour"),  # not one of the declared values: refused by the runner itself
        ({"hostname": "app", "apply": "true"}, "ApplyRefused", "confirm='sandbox'"),
        ({"hostname": "app", "apply": "true", "confirm": "production"}, "ApplyRefused", "does not name the target"),
    ],
)
def test_flip_refusals_change_nothing(
    sandbox: Sandbox, archive: Path, params: dict[str, str], kind: str | None, message: str
) -> None:
    before = [(r.name, r.content, r.proxied, r.comment) for r in cloudflare(sandbox).list_records()]
    out = run_procedure("flip-blue-green", params=params, archive_root=archive)
    m = manifest(out)
    assert out.status is RunStatus.REFUSED and out.exit_code == 2, m.get("error")
    if kind is not None:
        assert out.error is not None and out.error.kind == kind
    assert message in m["error"]["message"]
    assert [(r.name, r.content, r.proxied, r.comment) for r in cloudflare(sandbox).list_records()] == before
