"""Is an inventory ready for the real vendors? Identifier formats and the presence of every secret.

An inventory can be well-formed (it validates) and still hold placeholders: an account id that is a
name, a project ref too short, an age recipient that is no key. Against the real vendors such a value
fails deep inside a provider call. :func:`check` reads the inventory, never the vendors, and returns
one :class:`Problem` per field to fill in: the field, what is wrong and what to write there.

- Identifiers are checked against the vendor's own format: Supabase project ref (20 lowercase
  letters, also in the project URL), Cloudflare account and zone ids (32 hex digits), Render owner
  (``tea-``/``usr-``) and service / cron job ids (``srv-``/``crn-``), the age recipient (parsed by
  pyrage, as the backup will), bucket names (S3's naming rules).
- Secret references are checked for presence only (the variable is set, the file exists and is
  readable, the JSON field exists): a value is never returned, shown or registered.

:func:`require_ready` is what runbooks call (``runbooks.load_inventory``): outside the sandbox an
inventory with identifier problems is refused (``BadParameter`` naming ``environment``, exit 2) with the
same lines ``runbooks inventory check`` prints. The sandbox's ids come from the running twin (a partial
twin leaves some unset, and no runbook that runs there needs them), so it is checked only on request.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runbooks.errors import BadParameter
from runbooks.inventory.models import Environment

SANDBOX = "sandbox"

SUPABASE_REF = re.compile(r"^[a-z]{20}$")
CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
RENDER_OWNER = re.compile(r"^(tea|usr)-[a-z0-9]{20}$")
RENDER_SERVICE = re.compile(r"^(srv|crn)-[a-z0-9]{20}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    fix: str
    #: "identifier" (a value to fill in) or "secret" (a reference whose value is not there)
    kind: str = "identifier"

    def line(self) -> str:
        return f"{self.field}: {self.problem}; {self.fix}"


# -- identifiers --------------------------------------------------------------------------------------
def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def _format(field: str, value: str | None, pattern: re.Pattern[str], what: str, where: str) -> Problem | None:
    if value and pattern.match(value):
        return None
    got = "not set" if not value else f"{_shown(value)} is not {what}"
    return Problem(field, got, f"write the value from {where}")


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (None if it is)."""
    if not BUCKET.match(name):
        return (
            "not a bucket name (3-63 characters: lowercase letters, digits, dots, hyphens; alphanumeric at both ends)"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "not a bucket name (no adjacent dots, nor a dot next to a hyphen)"
    try:
        ipaddress.ip_address(name)
        return "not a bucket name (an IP address)"
    except ValueError:
        pass
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "not a bucket name (a reserved prefix or suffix)"
    return None


def recipient_problem(recipient: str) -> str | None:
    """Why ``recipient`` is not an age X25519 recipient (None if it is): parsed as the backup will."""
    from pyrage import x25519

    try:
        x25519.Recipient.from_str(recipient)
    except Exception:  # pyrage raises its own error types for each way a recipient can be malformed
        return f"{_shown(recipient)} is not an age X25519 recipient (age1 followed by 58 bech32 characters)"
    return None


def identifier_problems(env: Environment) -> list[Problem]:
    out: list[Problem] = []

    def add(p: Problem | None) -> None:
        if p is not None:
            out.append(p)

    add(
        _format(
            "supabase_project_ref",
            env.supabase_project_ref,
            SUPABASE_REF,
            "a Supabase project ref (20 lowercase letters)",
            "the Supabase dashboard: Project Settings > General > Reference ID",
        )
    )
    ref = env.supabase_project_ref
    expected_url = f"https://{ref}.supabase.co"
    # the twin serves the project on loopback: only a real project's URL is derived from its ref
    if (
        not env.endpoints_from_sandbox
        and SUPABASE_REF.match(ref)
        and env.endpoints.supabase_project.rstrip("/") != expected_url
    ):
        out.append(
            Problem(
                "endpoints.supabase_project",
                f"{_shown(env.endpoints.supabase_project)} is not the project's URL",
                f"write {expected_url} (the project ref's URL)",
            )
        )
    add(
        _format(
            "cloudflare_account_id",
            env.cloudflare_account_id,
            CLOUDFLARE_ID,
            "a Cloudflare account id (32 hex digits)",
            "the Cloudflare dashboard: Account Home > the zone > Overview > API > Account ID",
        )
    )
    ids = env.vendor_ids
    add(
        _format(
            "vendor_ids.cloudflare_zone_id",
            ids.cloudflare_zone_id,
            CLOUDFLARE_ID,
            "a Cloudflare zone id (32 hex digits)",
            f"the Cloudflare dashboard: the zone {env.zone} > Overview > API > Zone ID",
        )
    )
    add(
        _format(
            "render_owner_id",
            env.render_owner_id,
            RENDER_OWNER,
            "a Render workspace id (tea- or usr- and 20 characters)",
            "the Render dashboard: Workspace Settings > ID, or `GET /v1/owners`",
        )
    )
    render_ids = ids.render_services
    for name in [s.name for s in env.services] + [c.name for c in env.cron_jobs]:
        add(
            _format(
                f"vendor_ids.render_services.{name}",
                render_ids.get(name),
                RENDER_SERVICE,
                "a Render service or cron job id (srv- or crn- and 20 characters)",
                f"the Render dashboard: {name} > Settings (the id in its URL), or `GET /v1/services?name={name}`",
            )
        )
    problem = recipient_problem(env.backup.recipient)
    if problem:
        out.append(
            Problem(
                "backup.recipient",
                problem,
                "generate the backup key pair with `age-keygen` where the drill runs, write its public key here and "
                "keep the identity only in the secret backup_identity points at",
            )
        )
    for i, b in enumerate(env.buckets):
        problem = bucket_problem(b.name)
        if problem:
            out.append(Problem(f"buckets.{i}.name", f"{_shown(b.name)}: {problem}", "write the bucket's real name"))
    return out


# -- secret references (presence only) ---------------------------------------------------------------
def secret_refs(env: Environment) -> Iterator[tuple[str, str]]:
    """(inventory field, reference) of every secret reference of the inventory."""
    c = env.credentials
    for name in ("cloudflare_api_token", "render_api_key", "supabase_access_token", "database_url", "backup_identity"):
        yield f"credentials.{name}", getattr(c, name)
    for name in ("s3_runtime", "s3_backup_writer", "s3_drill_reader"):
        cred = getattr(c, name)
        yield f"credentials.{name}.access_key_id", cred.access_key_id
        yield f"credentials.{name}.secret_access_key", cred.secret_access_key
    for k in env.config.rotating_keys:
        if k.source:
            yield f"config.rotating_keys.{k.name}.source", k.source


def _env_absent(rest: str) -> str | None:
    if not ENV_NAME.match(rest):
        return f"{rest!r} is not an environment variable name"
    return None if os.environ.get(rest) else f"environment variable {rest} is not set (or empty)"


def _file_absent(rest: str) -> str | None:
    path_s, _, field = rest.partition("#")
    path = Path(path_s).expanduser()
    if not path.is_file():
        return f"no such file {path}"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    if field:
        try:
            data: object = json.loads(path.read_text())
        except (OSError, ValueError):
            return f"{path} is not valid JSON (so #{field} cannot be read)"
        for part in field.split("."):
            if not isinstance(data, dict) or part not in data:
                return f"{path} has no field {field!r}"
            data = data[part]
    return None


def _sandbox_absent(rest: str) -> str | None:
    from runbooks.paths import sandbox_root

    return None if (sandbox_root() / "secrets" / rest).is_file() else f"the twin has not written {rest} (is it up?)"


#: scheme -> why the value is absent (None when present); never returns or keeps the value
PRESENCE: dict[str, Callable[[str], str | None]] = {
    "env": _env_absent,
    "file": _file_absent,
    "sandbox": _sandbox_absent,
}


def secret_problems(env: Environment) -> list[Problem]:
    out = []
    for field, ref in secret_refs(env):
        scheme, _, rest = ref.partition(":")
        probe = PRESENCE.get(scheme)
        why = (
            probe(rest.strip())
            if probe
            else f"scheme {scheme}: is not resolvable by this installation (one of {', '.join(PRESENCE)})"
        )
        if why:
            out.append(Problem(field, f"{ref}: {why}", _secret_fix(scheme, rest), kind="secret"))
    return out


def _secret_fix(scheme: str, rest: str) -> str:
    if scheme == "env":
        return f"export {rest} in the runbooks' environment (the cron job's env group, or the on-call shell)"
    if scheme == "file":
        return f"put the secret in {rest.partition('#')[0]} (mode 0600) or point the reference elsewhere"
    if scheme == "sandbox":
        return "bring the twin up: `runbooks sandbox up`"
    return "use an env: or file: reference"


# -- the verdict ---------------------------------------------------------------------------------------
def check(env: Environment, *, secrets: bool = True) -> list[Problem]:
    """Every problem of ``env``: identifiers first, then (if ``secrets``) missing secret values."""
    return identifier_problems(env) + (secret_problems(env) if secrets else [])


def report(env: Environment, problems: list[Problem]) -> str:
    if not problems:
        return f"{env.environment}: the inventory is ready (identifiers in the vendors' formats, every secret present)"
    lines = [f"{env.environment}: the inventory is not ready ({len(problems)} field(s) to fill in)"]
    lines += [f"  - {p.line()}" for p in problems]
    return "\n".join(lines)


def require_ready(env: Environment) -> Environment:
    """``env`` if its identifiers are filled in; else BadParameter on ``environment`` (a refused run, exit 2).

    The sandbox is not checked (its ids come from the running twin). Secret presence is not required
    here: each runbook needs only some credentials (a backup job must not hold the identity that reads
    backups), and a missing one is named when the runbook resolves it.
    """
    from runbooks.paths import inventory_dir

    if env.environment == SANDBOX:
        return env
    problems = identifier_problems(env)
    if problems:
        raise BadParameter(
            "environment",
            env.environment,
            report(env, problems).split("\n", 1)[1].replace("\n", " ").replace("  - ", "| "),
            f"fill in the inventory {inventory_dir() / (env.environment + '.yaml')}; "
            f"`runbooks inventory check --env {env.environment}` lists every field",
            allowed=[env.environment],  # an environment's name (its inventory was loaded): may be shown
        )
    return env


def load_ready(environment: str) -> Environment:
    """The notebook-facing ``runbooks.load_inventory``: :func:`runbooks.inventory.load`, then :func:`require_ready`."""
    from runbooks.inventory.loader import load

    return require_ready(load(environment))
