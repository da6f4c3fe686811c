"""The twin's Postgres: a real server, seeded, password-protected, and capable of real PITR."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from runbooks.paths import project_root
from runbooks.sandbox.components import postgres
from runbooks.sandbox.fixture import Sandbox
from runbooks.sandbox.postgres import install

pytestmark = pytest.mark.sandbox


def _labels(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute("select label from restore_markers order by id")]


def test_seeded_schema_and_scale(sandbox_factory: Callable[..., object]) -> None:
    counts = {}
    for scale in (1, 2):
        with sandbox_factory(components=["postgres"], scale=scale) as sbx:  # type: ignore[attr-defined]
            with psycopg.connect(sbx.database_url) as c:
                counts[scale] = {
                    t: c.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
                    for t in ("tenants", "users", "sessions", "documents", "audit_events", "api_usage")
                }
                dims = c.execute("select distinct cardinality(embedding) from documents").fetchall()
                assert dims == [(64,)]
                kind = c.execute(
                    "select data_type from information_schema.columns "
                    "where table_name = 'documents' and column_name = 'embedding'"
                ).fetchone()
                assert kind == ("ARRAY",)
            assert _labels(sbx.database_url) == ["seed"]
    assert all(n > 0 for n in counts[1].values())
    assert counts[2] == {t: 2 * n for t, n in counts[1].items()}


def test_server_is_unprivileged_on_loopback_with_password_auth(sandbox: Sandbox) -> None:
    state = sandbox.components["postgres"]
    if os.geteuid() == 0:
        assert psutil.Process(state.pids[0]).username() == postgres.OS_USER
    info = conninfo_to_dict(sandbox.database_url)
    assert info["host"] == "127.0.0.1" and int(info["port"]) == state.extra["port"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1", port=info["port"], user="postgres", password="wrong", dbname="spectral", connect_timeout=3
        )
    assert postgres.pg_bin("pg_dump").is_file() and postgres.pg_bin("pg_restore").is_file()
    assert postgres.superuser_dsn(sandbox.root) == sandbox.database_url


def test_wal_is_archived(sandbox: Sandbox) -> None:
    archive = sandbox.root / "postgres" / "wal_archive"
    with psycopg.connect(sandbox.database_url, autocommit=True) as c:
        c.execute("insert into restore_markers (label) values ('archive-probe')")
        seg = c.execute("select pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 10
    while not (archive / seg).is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (archive / seg).is_file()
    assert (sandbox.root / "postgres" / "base" / "backup_label").is_file()


def test_point_in_time_recovery_round_trip(sandbox_factory: Callable[..., object]) -> None:
    with sandbox_factory(components=["postgres"]) as sbx:  # type: ignore[attr-defined]
        dsn = sbx.database_url
        port_before = sbx.components["postgres"].extra["port"]
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("insert into restore_markers (label) values ('A')")
            time.sleep(0.3)
            target = datetime.now(UTC)
            time.sleep(0.3)
            c.execute("insert into restore_markers (label) values ('B')")
        assert _labels(dsn) == ["seed", "A", "B"]

        postgres.recover_to(sbx.root, target)

        assert _labels(dsn) == ["seed", "A"]  # same DSN: same port, same credentials
        with psycopg.connect(dsn) as c:
            assert c.execute("select pg_is_in_recovery()").fetchone() == (False,)
            c.execute("insert into restore_markers (label) values ('after')")  # writable again
        status = sbx.status()
        assert status["components"]["postgres"]["healthy"]
        assert status["components"]["postgres"]["port"] == port_before
        # the restarted server is tracked: down (on leaving the with) stops it
        new_pid = status["components"]["postgres"]["pids"][0]
    assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == psutil.STATUS_ZOMBIE


def test_recover_to_rejects_times_it_cannot_reach(sandbox_factory: Callable[..., object]) -> None:
    with sandbox_factory(components=["postgres"]) as sbx:  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="future"):
            postgres.recover_to(sbx.root, datetime(2999, 1, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="before the base backup"):
            postgres.recover_to(sbx.root, datetime(2000, 1, 1, tzinfo=UTC))
        assert _labels(sbx.database_url) == ["seed"]


def _modes_above(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in path.resolve().parents}


def test_up_with_a_private_cache_changes_no_directory_of_the_user(
    sandbox_factory: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "private" / "cache"  # pytest's own base directory is 0700 as well
    cache.mkdir(parents=True)
    cache.parent.chmod(0o700)
    cache.chmod(0o700)
    monkeypatch.setenv(postgres.CACHE_ENV, str(cache))  # a fresh cache: initdb runs in this test
    watched = {cache: cache.stat().st_mode}
    for p in (cache, project_root(), postgres.bin_dir()):
        watched.update(_modes_above(p))
    assert stat.S_IMODE(watched[cache.parent]) == 0o700

    with sandbox_factory(components=["postgres"]) as sbx:  # type: ignore[attr-defined]
        assert _labels(sbx.database_url) == ["seed"]
        data = Path(sbx.components["postgres"].extra["data_dir"])
        if os.geteuid() == 0:  # the server's files belong to the server's user, the cached template to us
            assert data.owner() == postgres.OS_USER
            assert data.is_relative_to(tempfile.gettempdir())

    templates = list(cache.glob("pg-template-*/PG_VERSION"))
    assert len(templates) == 1
    assert templates[0].parent.stat().st_uid == os.geteuid()
    assert {p: p.stat().st_mode for p in watched} == watched
    assert not list(cache.glob("pg-template-*.*/"))  # no half-made template left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")
def test_programs_out_of_the_servers_reach_are_copied_not_opened_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = install.bin_dir()
    pkg = real.parent.parent
    private = tmp_path / "home"  # like a virtualenv under /root
    site = private / "site-packages"
    shutil.copytree(pkg / real.parent.name, site / pkg.name / real.parent.name, symlinks=True)
    for libs in pkg.parent.glob(f"{pkg.name}*.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    private.chmod(0o700)
    fake = site / pkg.name / real.parent.name / real.name
    monkeypatch.setattr(install, "bin_dir", lambda: fake)
    user = install.os_user()
    assert user is not None and not install.runs_as(user, fake / "postgres")

    copied = install.server_bin_dir(user)
    try:
        assert copied.is_relative_to(tempfile.gettempdir()) and copied.parents[2].name.startswith("runbooks-twin-")
        assert install.runs_as(user, copied / "postgres") and install.runs_as(user, copied / "initdb")
        assert install.server_bin_dir(user) == copied  # made once
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(copied.parents[2])
        Path(f"{copied.parents[2]}.lock").unlink(missing_ok=True)
