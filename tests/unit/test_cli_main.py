"""The console script loads only the command being run, and every command still resolves by name."""

import subprocess
import sys

import pytest

from runbooks.cli.main import COMMANDS, GROUPS, build_app


@pytest.mark.parametrize("command", sorted({*COMMANDS, *GROUPS}))
def test_each_command_resolves_by_name_alone(command):
    out = subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: " in out.stdout and command in out.stdout.split("\n", 3)[1]


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", "--help"], capture_output=True, text=True, timeout=60
    )
    for name in (*COMMANDS, *GROUPS):
        assert f" {name} " in out.stdout


def test_run_does_not_import_the_sandbox_or_archive_cli():
    code = (
        "import sys; from runbooks.cli.main import build_app; build_app(['run', '--help']); "
        "print(sorted(m for m in sys.modules if m.startswith('runbooks.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = out.stdout.strip()
    # the shared option types (a few lines) are fine; no other command group is imported
    assert loaded == "['runbooks.cli.main', 'runbooks.cli.options', 'runbooks.cli.run']", out.stdout + out.stderr


def test_full_app_for_embedding():
    assert build_app([]).registered_groups
