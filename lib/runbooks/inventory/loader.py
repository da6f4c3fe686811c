"""Load and validate an environment's inventory file; errors name the file, the field and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runbooks.inventory.models import Environment
from runbooks.paths import inventory_dir, sandbox_root

ENVIRONMENTS = ("production", "staging", "sandbox")
SANDBOX_ENDPOINTS_FILE = "endpoints.json"


class InventoryError(ValueError):
    """A malformed or missing inventory: the message names the file, the field and the problem."""


def _format(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid inventory ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {loc}: {e['msg']}")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def sandbox_overlay(root: Path | None = None) -> dict[str, Any]:
    """What the running twin publishes for the sandbox inventory: endpoints and ids."""
    path = (root or sandbox_root()) / SANDBOX_ENDPOINTS_FILE
    if not path.is_file():
        raise InventoryError(
            f"{path}: the sandbox is not running (no endpoints file). Start it with `runbooks sandbox up`."
        )
    data = json.loads(path.read_text())
    overlay = data.get("inventory_overlay", {})
    if not isinstance(overlay, dict):
        raise InventoryError(f"{path}: inventory_overlay must be a mapping")
    return overlay


def load_file(path: Path, *, sandbox: Path | None = None) -> Environment:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise InventoryError(f"{path}: no such inventory file") from e
    except yaml.YAMLError as e:
        raise InventoryError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise InventoryError(f"{path}: the inventory must be a mapping at the top level")
    if raw.get("endpoints_from_sandbox"):
        raw = _deep_merge(raw, sandbox_overlay(sandbox))
    try:
        return Environment.model_validate(raw)
    except ValidationError as e:
        raise InventoryError(_format(path, e)) from None


def load(environment: str, *, directory: Path | None = None, sandbox: Path | None = None) -> Environment:
    """The validated inventory of ``environment`` (production, staging or sandbox)."""
    if environment not in ENVIRONMENTS:
        raise InventoryError(f"unknown environment {environment!r}: choose one of {', '.join(ENVIRONMENTS)}")
    env = load_file((directory or inventory_dir()) / f"{environment}.yaml", sandbox=sandbox)
    if env.environment != environment:
        raise InventoryError(f"{environment}.yaml: field environment says {env.environment!r}")
    return env
