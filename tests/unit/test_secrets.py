"""runbooks.secrets: references, backends, errors that never show a value, registration for redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbooks import redact, secrets
from runbooks.secrets import SecretError, fingerprint, parse_ref, secret


def test_env_backend_resolves_and_registers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_UNIT_TOKEN", "unit-token-value-123")
    assert secret("env:RB_UNIT_TOKEN") == "unit-token-value-123"
    assert redact.scrub("x unit-token-value-123 y") == "x [REDACTED:env:RB_UNIT_TOKEN] y"


def test_env_missing_names_ref_and_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RB_UNIT_MISSING", raising=False)
    with pytest.raises(SecretError, match=r"env:RB_UNIT_MISSING: environment variable RB_UNIT_MISSING is not set"):
        secret("env:RB_UNIT_MISSING")
    with pytest.raises(SecretError, match="not a valid environment variable name"):
        secret("env:not-a-name")


def test_file_backend_plain_and_json_field(tmp_path: Path) -> None:
    plain = tmp_path / "token"
    plain.write_text("file-secret-value-1\n")
    assert secret(f"file:{plain}") == "file-secret-value-1"
    js = tmp_path / "creds.json"
    js.write_text(json.dumps({"aws": {"keys": [{"secret": "json-secret-value-2"}]}, "n": 12345678}))
    assert secret(f"file:{js}#aws.keys.0.secret") == "json-secret-value-2"
    assert secret(f"file:{js}#n") == "12345678"
    with pytest.raises(SecretError, match=r"no field 'aws.nope'.*fix the #field") as e:
        secret(f"file:{js}#aws.nope")
    assert "json-secret-value-2" not in str(e.value)
    with pytest.raises(SecretError, match="not a string or number"):
        secret(f"file:{js}#aws")
    with pytest.raises(SecretError, match="not valid JSON"):
        secret(f"file:{plain}#x")
    with pytest.raises(SecretError, match="no such file"):
        secret(f"file:{tmp_path / 'absent'}")


def test_file_backend_relative_to_project_root() -> None:
    # pyproject.toml is a file at the project root: a relative path resolves there
    assert "spectral-runbooks" in secret("file:pyproject.toml")


def test_sandbox_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_SANDBOX", str(tmp_path))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "database_url").write_text("postgresql://postgres:sandboxpw123@127.0.0.1:5/p\n")
    assert secret("sandbox:database_url") == "postgresql://postgres:sandboxpw123@127.0.0.1:5/p"
    with pytest.raises(SecretError, match=r"runbooks sandbox up"):
        secret("sandbox:absent")
    with pytest.raises(SecretError, match="not a valid sandbox secret name"):
        secret("sandbox:../escape")


@pytest.mark.parametrize("bad", ["", "no-scheme", "vault:kv/x", ":x", "env:"])
def test_malformed_or_unknown_refs(bad: str) -> None:
    with pytest.raises(SecretError, match=r"secret reference|unknown secret scheme"):
        parse_ref(bad)


def test_plugged_backend_and_its_errors_hide_messages() -> None:
    def vault(rest: str, ref: str) -> str:
        if rest == "boom":
            raise RuntimeError("the-backend-echoed-a-value-xyz")
        return f"vault-value-for-{rest}"

    secrets.register_backend("vaulttest", vault)
    assert secret("vaulttest:db") == "vault-value-for-db"
    with pytest.raises(SecretError, match=r"vaulttest backend failed \(RuntimeError\)") as e:
        secret("vaulttest:boom")
    assert "the-backend-echoed-a-value-xyz" not in str(e.value)
    with pytest.raises(ValueError):
        secrets.register_backend("Bad Scheme", vault)


def test_fingerprint_is_stable_and_short() -> None:
    fp = fingerprint("some-key-value")
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 12
    assert fp == fingerprint(b"some-key-value") and fp != fingerprint("other-key-value")
    assert "some-key-value" not in fp


def test_short_values_are_resolved_but_not_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_UNIT_SHORT", "abc12")
    assert secret("env:RB_UNIT_SHORT") == "abc12"
    assert redact.scrub("abc12") == "abc12"  # documented: < 8 characters are not registered


def test_protect_registers_issued_key_material() -> None:
    assert secrets.protect("issued-by-vendor-abc123", "supabase:new_secret_key") == "issued-by-vendor-abc123"
    assert redact.scrub("k=issued-by-vendor-abc123") == "k=[REDACTED:supabase:new_secret_key]"
