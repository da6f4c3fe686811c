"""The twin's PostgreSQL parts that need no server: cluster paths and configuration, the cluster directory,
the base backup's time and the targets a recovery refuses before touching anything. (The server itself, its
seeding and real recoveries: tests/e2e/test_sandbox_postgres.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbooks.sandbox.components import postgres
from runbooks.sandbox.postgres import cluster, pitr
from runbooks.sandbox.postgres.errors import PostgresError


def test_the_configuration_listens_on_loopback_and_archives_wal(tmp_path: Path) -> None:
    text = cluster.conf(54321, tmp_path / "run", tmp_path / "archive")
    assert "listen_addresses = '127.0.0.1'" in text and "port = 54321" in text
    assert f"unix_socket_directories = '{tmp_path / 'run'}'" in text and "unix_socket_permissions = 0700" in text
    assert f'cp "%p" "{tmp_path / "archive"}/%f"' in text and "archive_mode = on" in text
    assert f"include_if_exists = '{cluster.RECOVERY_CONF}'" in text


def test_the_cluster_lives_under_the_root_when_we_run_the_server(tmp_path: Path) -> None:
    real = cluster.make_cluster_dir(tmp_path, None)
    assert real == (tmp_path / "postgres").resolve() and real.is_dir()
    p = cluster.paths(tmp_path)
    assert (p.data, p.archive, p.base) == (real / "data", real / "wal_archive", real / "base")


def test_base_backup_time_needs_a_base_backup(tmp_path: Path) -> None:
    with pytest.raises(PostgresError, match="no base backup"):
        pitr.base_backup_time(tmp_path)
    taken = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cluster.make_cluster_dir(tmp_path, None)
    cluster.paths(tmp_path).base_info.write_text(json.dumps({"taken_at": taken.isoformat()}))
    assert pitr.base_backup_time(tmp_path) == taken


def test_recovery_refuses_targets_it_cannot_reach_before_touching_anything(tmp_path: Path) -> None:
    cluster.make_cluster_dir(tmp_path, None)
    base = datetime.now(UTC) - timedelta(hours=1)
    cluster.paths(tmp_path).base_info.write_text(json.dumps({"taken_at": base.isoformat()}))
    with pytest.raises(ValueError, match="in the future"):
        pitr.recover_to(tmp_path, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(ValueError, match="before the base backup"):
        pitr.recover_to(tmp_path, base - timedelta(minutes=1))
    assert sorted(p.name for p in (tmp_path / "postgres").iterdir()) == ["base.json"]


def test_the_component_module_keeps_its_public_surface() -> None:
    for name in ("pg_bin", "superuser_dsn", "take_base_backup", "recover_to", "base_backup_time", "PostgresError"):
        assert callable(getattr(postgres, name)), name
    assert postgres.recover_to is pitr.recover_to and postgres.PostgresComponent.name == "postgres"
