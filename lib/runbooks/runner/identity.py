"""Who ran what where: actor, host and code version for the manifest."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from functools import cache

ACTOR_ENV = "RUNBOOKS_ACTOR"


def actor(explicit: str | None = None) -> str:
    """``explicit``, else ``$RUNBOOKS_ACTOR``, else the login name."""
    if explicit:
        return explicit
    if os.environ.get(ACTOR_ENV):
        return os.environ[ACTOR_ENV]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def host() -> str:
    return socket.gethostname()


@cache
def code_version() -> str:
    """``git describe --always --dirty`` of the project checkout, else the package version."""
    from runbooks import __version__, paths

    root = paths.project_root()
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return __version__
