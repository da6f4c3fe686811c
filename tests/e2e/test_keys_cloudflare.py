"""rotate-keys for CLOUDFLARE_API_TOKEN through the runner, on a separate twin (edge + render): the runtime's
token is replaced with zero downtime (a second token, then the old one deleted), an interruption right after
the group update resumes without a second new token, one right after the issue (the value lost) replaces the
orphan token, and the runbooks' own token is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from test_keys import APPLY, assert_archive_clean, group_env, manifest, render, steps, twin_secrets

from runbooks.archive.manifest import RunStatus
from runbooks.procedures.rotation import INTERRUPT_ENV
from runbooks.providers.cloudflare import CloudflareProvider, TokenInfo
from runbooks.runner.run import run_procedure
from runbooks.sandbox.fixture import Sandbox
from runbooks.secrets import fingerprint

pytestmark = [pytest.mark.sandbox]

KEY = "CLOUDFLARE_API_TOKEN"
PARAMS = {"keys": KEY, **APPLY}


def admin(sbx: Sandbox) -> CloudflareProvider:
    env = sbx.inventory()
    return CloudflareProvider(
        env.endpoints.cloudflare_api,
        sbx.secret("cloudflare_api_token"),
        account_id=env.cloudflare_account_id,
        zone=env.zone,
        max_retries=0,
    )


def verify_status(sbx: Sandbox, token: str) -> int:
    url = sbx.inventory().endpoints.cloudflare_api.rstrip("/") + "/user/tokens/verify"
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code


def tokens(sbx: Sandbox) -> dict[str, TokenInfo]:
    return {t.id: t for t in admin(sbx).list_tokens()}


def services_on(sbx: Sandbox, value: str) -> list[dict[str, Any]]:
    r = render(sbx)
    out = []
    for s in r.services():
        if s.type == "cron_job":  # no process between its runs: nothing reports
            continue
        code, body = r.health(s)
        assert code == 200, body
        assert body["keys"][KEY] == fingerprint(value), s.name
        assert body["cloudflare"][KEY]["ok"] is True, body["cloudflare"]
        out.append(body)
    return out


def test_cloudflare_token_rotation_interrupted_resumed_then_again(
    sandbox_factory: Any, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_factory(components=["render"]) as sbx:
        monkeypatch.setenv("RUNBOOKS_SANDBOX", str(sbx.root))
        old = group_env(sbx)[KEY]
        # the group holds the edge twin's real runtime token, not a placeholder, and not the admin token
        assert old == sbx.secret("cloudflare_runtime_token") != sbx.secret("cloudflare_api_token")
        assert verify_status(sbx, old) == 200
        services_on(sbx, old)
        before = tokens(sbx)
        assert sorted(t.name for t in before.values()) == ["spectral-runbooks", "spectral-runtime"]
        seen = twin_secrets(sbx)

        # 1. interrupted right after the group update: both tokens valid, services still on the old one
        monkeypatch.setenv(INTERRUPT_ENV, "write_group")
        first = run_procedure("rotate-keys", params=PARAMS, archive_root=archive)
        assert first.status is not RunStatus.SUCCEEDED
        assert "interrupted after step write_group" in str(manifest(first).get("error"))
        mid = group_env(sbx)[KEY]
        assert mid != old and verify_status(sbx, mid) == 200 and verify_status(sbx, old) == 200
        services_on(sbx, old)
        monkeypatch.delenv(INTERRUPT_ENV)

        # 2. resumed: no second token; services on the new one, verified; the old one deleted and refused
        second = run_procedure("rotate-keys", params=PARAMS, archive_root=archive)
        m = manifest(second)
        assert second.status is RunStatus.SUCCEEDED, m.get("error")
        assert m["results"]["plan"][0]["state"].startswith("resuming")
        done = steps(second)
        assert (KEY, "issue", "already done") in done and (KEY, "write_group", "already done") in done
        assert ("*", "deploy", "done") in done
        assert {(KEY, s, "done") for s in ("verify_services", "revoke_old", "verify_old_refused")} <= set(done)
        after = tokens(sbx)
        new_ids = set(after) - set(before)
        assert len(new_ids) == 1, "exactly one new token across both runs"
        [new_id] = new_ids
        assert after[new_id].name.startswith("spectral-runtime (rotated_")
        assert after[new_id].policies == next(t for t in before.values() if t.name == "spectral-runtime").policies
        assert group_env(sbx)[KEY] == mid
        services_on(sbx, mid)
        assert verify_status(sbx, old) == 401
        assert verify_status(sbx, sbx.secret("cloudflare_api_token")) == 200  # the runbooks' token untouched

        # 3. a fresh rotation right after: one more token, the previous one refused, proved with its value
        third = run_procedure("rotate-keys", params=PARAMS, archive_root=archive)
        assert third.status is RunStatus.SUCCEEDED, manifest(third).get("error")
        refused = [r for r in manifest(third)["results"]["steps"] if r["step"] == "verify_old_refused"]
        assert refused and refused[0]["status"] == "done" and "HTTP 401" in refused[0]["detail"]
        latest = group_env(sbx)[KEY]
        assert latest not in (old, mid) and verify_status(sbx, mid) == 401
        services_on(sbx, latest)
        assert len(tokens(sbx)) == 2

        # 4. interrupted right after the issue, before the group update: the new value is lost with the run
        # (Cloudflare shows it once); the next run deletes that token and issues its replacement
        monkeypatch.setenv(INTERRUPT_ENV, "issue")
        fourth = run_procedure("rotate-keys", params=PARAMS, archive_root=archive)
        assert fourth.status is not RunStatus.SUCCEEDED and group_env(sbx)[KEY] == latest
        assert len(tokens(sbx)) == 3  # admin, current runtime, the orphan
        monkeypatch.delenv(INTERRUPT_ENV)
        fifth = run_procedure("rotate-keys", params=PARAMS, archive_root=archive)
        assert fifth.status is RunStatus.SUCCEEDED, manifest(fifth).get("error")
        assert (KEY, "issue", "re-issuing") in steps(fifth) and (KEY, "issue", "done") in steps(fifth)
        final = group_env(sbx)[KEY]
        assert final != latest and verify_status(sbx, final) == 200 and verify_status(sbx, latest) == 401
        assert len(tokens(sbx)) == 2  # never two new tokens
        services_on(sbx, final)
        assert_archive_clean(archive, seen | {old, mid, latest, final} | twin_secrets(sbx))
