"""The archive of record in the twin's object-locked audit bucket (one S3-only twin for the module).

Conditional writes are atomic under concurrency, the audit-writer credential cannot rewrite history, runs
from two processes form one contiguous ledger, a run that cannot reach S3 is spooled and shipped later,
a local copy is checked against the bucket, and two machines contend for one environment lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from runner_fixtures import PROJECT, nb, run_cli, start_cli, wait_for_file

from runbooks.sandbox.fixture import Sandbox, running_sandbox

pytestmark = pytest.mark.sandbox

AUDIT = "spectral-audit"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("s3-archive-twin"), components=["s3"], set_env=True) as sbx:
        yield sbx


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's spool and cache (a machine's local state), exported for subprocesses too."""
    monkeypatch.setenv("RUNBOOKS_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("RUNBOOKS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNBOOKS_ACTOR", "e2e-tester")
    return tmp_path


def _url(name: str) -> str:
    return f"s3://{AUDIT}/{name}-{os.getpid()}-{datetime.now(UTC):%H%M%S%f}"


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


# -- the twin: atomic conditional writes, and a writer that cannot rewrite history ----------------------
def test_many_concurrent_conditional_creates_exactly_one_wins(twin: Sandbox) -> None:
    s3 = twin.s3_client("audit-writer")
    s3.meta.config.max_pool_connections = 32
    for round_ in range(5):
        key = f"race-{os.getpid()}/slot-{round_}.json"
        barrier = threading.Barrier(24)

        def create(i: int, key: str = key, barrier: threading.Barrier = barrier) -> int | None:
            barrier.wait()
            try:
                s3.put_object(Bucket=AUDIT, Key=key, Body=f"writer {i}".encode(), IfNoneMatch="*")
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (409, 412), e.response
                return None
            return i

        with ThreadPoolExecutor(24) as pool:
            winners = [w for w in pool.map(create, range(24)) if w is not None]
        assert len(winners) == 1, f"round {round_}: {len(winners)} writers created {key}"
        body = s3.get_object(Bucket=AUDIT, Key=key)["Body"].read()
        assert body == f"writer {winners[0]}".encode()
        versions = s3.list_object_versions(Bucket=AUDIT, Prefix=key)["Versions"]
        assert len(versions) == 1  # the losers wrote nothing


def test_concurrent_replaces_on_one_etag_exactly_one_wins(twin: Sandbox) -> None:
    s3 = twin.s3_client("audit-writer")
    key = f"race-{os.getpid()}/lease.json"
    etag = s3.put_object(Bucket=AUDIT, Key=key, Body=b"v0", IfNoneMatch="*")["ETag"]
    barrier = threading.Barrier(16)

    def replace(i: int) -> bool:
        barrier.wait()
        try:
            s3.put_object(Bucket=AUDIT, Key=key, Body=f"v{i + 1}".encode(), IfMatch=etag)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 412, e.response
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(replace, range(16))) == 1


def test_audit_writer_may_put_and_read_but_never_rewrite_history(twin: Sandbox) -> None:
    w = twin.s3_client("audit-writer")
    key = f"hist-{os.getpid()}/ledger/000000000001.json"
    version = w.put_object(Bucket=AUDIT, Key=key, Body=b"entry", IfNoneMatch="*")["VersionId"]
    head = w.head_object(Bucket=AUDIT, Key=key)
    inv = twin.inventory().audit_bucket
    assert inv is not None and inv.object_lock is not None
    assert head["ObjectLockMode"] == inv.object_lock.mode  # the bucket's default retention, from the inventory
    assert w.get_object(Bucket=AUDIT, Key=key)["Body"].read() == b"entry"
    with pytest.raises(ClientError) as err:
        w.put_object(Bucket=AUDIT, Key=key, Body=b"rewritten")  # an overwrite of history
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    for attempt in (
        lambda: w.delete_object(Bucket=AUDIT, Key=key),
        lambda: w.delete_object(Bucket=AUDIT, Key=key, VersionId=version),
        lambda: w.delete_object(Bucket=AUDIT, Key=key, VersionId=version, BypassGovernanceRetention=True),
        lambda: w.put_object_retention(
            Bucket=AUDIT,
            Key=key,
            VersionId=version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": datetime(2020, 1, 1, tzinfo=UTC)},
            BypassGovernanceRetention=True,
        ),
        lambda: w.put_object_lock_configuration(Bucket=AUDIT, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}),
        lambda: w.put_bucket_versioning(Bucket=AUDIT, VersioningConfiguration={"Status": "Suspended"}),
        lambda: w.delete_bucket(Bucket=AUDIT),
        lambda: w.put_object(Bucket="spectral-backups", Key="nightly/x", Body=b"x"),
    ):
        with pytest.raises(ClientError) as err:
            attempt()
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, err.value.response
    batch = w.delete_objects(Bucket=AUDIT, Delete={"Objects": [{"Key": key, "VersionId": version}, {"Key": key}]})
    assert not batch.get("Deleted") and [e["Code"] for e in batch["Errors"]] == ["AccessDenied", "AccessDenied"]
    versions = twin.s3_client("admin").list_object_versions(Bucket=AUDIT, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [version] and not versions.get("DeleteMarkers")


# -- runs: two processes, one contiguous ledger ---------------------------------------------------------
def test_eight_runs_from_two_processes_make_one_contiguous_ledger(twin: Sandbox, homes: Path) -> None:
    from runbooks.archive.stores import open_store

    url = _url("concurrent")
    script = (
        "import sys\n"
        "from runbooks.runner.run import run_procedure\n"
        "for i in range(4):\n"
        "    out = run_procedure(sys.argv[1], params={'seconds': '0'}, archive_root=sys.argv[2])\n"
        "    assert out.exit_code == 0 and not out.spooled, out\n"
        "    print(out.run_id, out.location, flush=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, nb("sleep"), url],
            cwd=PROJECT,
            env={**os.environ, "RUNBOOKS_SPOOL": str(homes / f"spool-{i}"), "RUNBOOKS_CACHE": str(homes / f"c-{i}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    committed = {line.split()[0] for out, _ in outputs for line in out.splitlines()}
    store = open_store(url, "sandbox")
    entries = store.entries()
    assert [e.seq for e in entries] == list(range(1, 9))
    assert {e.run_id for e in entries} == committed and len(committed) == 8
    report = store.verify()
    assert report.ok, report.findings
    assert report.runs_checked == 8
    listed = run_cli("runs", "list", "--archive", url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"] for r in json.loads(listed.stdout)} == committed
    shown = run_cli("runs", "show", entries[-1].run_id[:-2], "--archive", url)
    assert shown.returncode == 0 and "verified" in shown.stdout, shown.stdout + shown.stderr


def test_verify_reports_a_deleted_record(twin: Sandbox, homes: Path) -> None:
    from runbooks.archive.s3store import S3Store, entry_key
    from runbooks.archive.stores import open_store
    from runbooks.runner.run import run_procedure

    url = _url("tamper")
    out = run_procedure(nb("raise"), archive_root=url)
    assert out.location.startswith(url) and out.run_dir is None
    store = open_store(url, "sandbox")
    assert isinstance(store, S3Store) and store.verify().ok
    twin.s3_client("admin").delete_object(Bucket=AUDIT, Key=f"{store.prefix}/{entry_key(1)}")  # a delete marker
    for deep in (False, True):  # the seal written by the clean verify above knew it; the versions show the marker
        kinds = {f.kind.value for f in store.verify(deep=deep).findings}
        assert "object_deleted" in kinds, (deep, kinds)


# -- S3 away: spooled, then shipped -----------------------------------------------------------------------
class Proxy:
    """A TCP relay to the twin's S3 that the test can cut and restore (S3 "stopped" and back)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self.port, self._server = srv.getsockname()[1], srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            self._conns += [client, up]
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self._conns.clear()


@pytest.fixture
def s3_via_proxy(twin: Sandbox) -> Iterator[Proxy]:
    """The sandbox inventory's S3 endpoint goes through a proxy for the duration of the test."""
    endpoints = twin.root / "endpoints.json"
    original = endpoints.read_text()
    address = twin.address("s3").removeprefix("http://")
    host, port = address.rsplit(":", 1)
    proxy = Proxy((host, int(port)))
    proxy.start()
    data = json.loads(original)
    data["inventory_overlay"]["endpoints"]["s3"] = f"http://127.0.0.1:{proxy.port}"
    endpoints.write_text(json.dumps(data))
    try:
        yield proxy
    finally:
        proxy.stop()
        endpoints.write_text(original)


def test_a_run_that_loses_s3_midway_is_spooled_then_shipped_in_order(
    twin: Sandbox, homes: Path, s3_via_proxy: Proxy
) -> None:
    from runbooks.archive.stores import open_store
    from runbooks.runner.run import SPOOLED_EXIT, run_procedure

    url = _url("spool")
    started, go = homes / "started", homes / "go"
    box: dict[str, Any] = {}

    def run_destructive() -> None:
        box["out"] = run_procedure(
            nb("destructive"), params={"started_marker": str(started), "wait_for": str(go)}, archive_root=url
        )

    t = threading.Thread(target=run_destructive)
    t.start()
    wait_for_file(started)  # the run holds the environment's lease in the bucket and its kernel is running
    s3_via_proxy.stop()  # S3 is away mid-run
    go.write_text("go")
    t.join(timeout=300)
    first = box["out"]
    assert first.spooled and first.exit_code == SPOOLED_EXIT and first.run_dir is not None
    assert "cannot be reached" in first.archive_note
    second = run_procedure(nb("sleep"), params={"seconds": "0"}, archive_root=url)  # S3 still away
    assert second.spooled and second.exit_code == SPOOLED_EXIT

    cli = run_cli("runs", "sync", "--archive", url)
    assert cli.returncode == 75 and "still unreachable" in cli.stderr, cli.stdout + cli.stderr

    s3_via_proxy.start()  # S3 is back
    shipped = run_cli("runs", "sync", "--archive", url)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert f"shipped {first.run_id}" in shipped.stdout and f"shipped {second.run_id}" in shipped.stdout
    third = run_procedure(nb("sleep"), params={"seconds": "0"}, archive_root=url)
    assert not third.spooled and third.exit_code == 0
    store = open_store(url, "sandbox")
    assert [e.run_id for e in store.entries()] == [first.run_id, second.run_id, third.run_id]
    report = store.verify()
    assert report.ok, report.findings
    assert (
        store.read_manifest(first.run_id).files
        == json.loads(  # the spooled record, byte for byte
            (first.run_dir / "run.json").read_text()
        )["files"]
    )
    assert store.read_manifest(first.run_id).lock is not None


def test_the_next_run_ships_the_spool_automatically(twin: Sandbox, homes: Path, s3_via_proxy: Proxy) -> None:
    from runbooks.archive.stores import open_store
    from runbooks.runner.run import run_procedure

    url = _url("autosync")
    s3_via_proxy.stop()
    spooled = run_procedure(nb("sleep"), params={"seconds": "0"}, archive_root=url)
    assert spooled.spooled
    s3_via_proxy.start()
    after = run_procedure(nb("sleep"), params={"seconds": "0"}, archive_root=url)
    assert not after.spooled and after.exit_code == 0
    store = open_store(url, "sandbox")
    assert [e.run_id for e in store.entries()] == [spooled.run_id, after.run_id]


# -- a local copy against the bucket ----------------------------------------------------------------------
def _rewrite_tail(local: Path, drop_last: bool) -> None:
    """Consistently rewrite a local archive's tail: the local verify alone cannot tell."""
    from runbooks.archive.canonical import model_canonical_json, sha256_hex
    from runbooks.archive.ledger import Ledger, LedgerEntry
    from runbooks.archive.manifest import RunManifest, RunStatus
    from runbooks.archive.store import Archive

    ledger = Ledger(local)
    entries = ledger.entries()
    last = entries[-1]
    if drop_last:
        kept = entries[:-1]
        import shutil

        shutil.rmtree(local / last.path)
    else:
        mpath = local / last.path / "run.json"
        m = RunManifest.model_validate_json(mpath.read_bytes()).model_copy(update={"status": RunStatus.SUCCEEDED})
        body = model_canonical_json(m) + b"\n"
        mpath.write_bytes(body)
        kept = [*entries[:-1], LedgerEntry.make(last.seq, last.run_id, last.path, sha256_hex(body), last.prev)]
    ledger.path.write_bytes(b"".join(e.line() for e in kept))
    ledger.write_head(kept[-1])
    Archive(local).reindex()


@pytest.mark.parametrize("tamper", ["cut_tail", "rewritten_last_record"])
def test_verify_against_the_bucket_finds_a_tampered_local_copy(twin: Sandbox, homes: Path, tamper: str) -> None:
    from runbooks.runner.run import run_procedure

    url = _url("anchor")
    for name in ("sleep", "raise"):
        run_procedure(nb(name), params={"seconds": "0"} if name == "sleep" else {}, archive_root=url)
    local = homes / "copy"
    pulled = run_cli("runs", "pull", "--from", url, "--archive", str(local))
    assert pulled.returncode == 0 and "copied 2 run(s)" in pulled.stdout, pulled.stdout + pulled.stderr
    clean = run_cli("runs", "verify", "--archive", str(local), "--against", url)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    _rewrite_tail(local, drop_last=tamper == "cut_tail")
    alone = run_cli("runs", "verify", "--archive", str(local))
    assert alone.returncode == 0, alone.stdout  # consistent with itself: only the anchor can tell
    found = run_cli("runs", "verify", "--archive", str(local), "--against", url, "--json")
    assert found.returncode == 1, found.stdout + found.stderr
    kinds = {f["kind"] for f in json.loads(found.stdout)["findings"]}
    assert kinds == ({"ledger_truncated"} if tamper == "cut_tail" else {"anchor_mismatch"}), kinds


# -- one lock, two machines ---------------------------------------------------------------------------------
def test_two_machines_contend_for_one_environment_lease(twin: Sandbox, homes: Path) -> None:
    from runbooks.archive import lease
    from runbooks.archive.stores import open_store

    url = _url("locks")
    started, go = homes / "started", homes / "go"
    machine_a = {"RUNBOOKS_SPOOL": str(homes / "a-spool"), "RUNBOOKS_CACHE": str(homes / "a-cache")}
    machine_b = {"RUNBOOKS_SPOOL": str(homes / "b-spool"), "RUNBOOKS_CACHE": str(homes / "b-cache")}
    holder = start_cli(
        "run", nb("destructive"), "--archive", url, "--actor", "alice", "--apply", "--confirm", "sandbox",
        "-p", f"started_marker={started}", "-p", f"wait_for={go}", env=machine_a,
    )  # fmt: skip
    try:
        run_id = wait_for_file(started, proc=holder)
        refused = run_cli("run", nb("destructive"), "--archive", url, "--actor", "bob", env=machine_b)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert run_id in refused.stderr and "alice" in refused.stderr and socket.gethostname() in refused.stderr
        assert "lease expires" in refused.stderr
    finally:
        go.write_text("go")
        out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, out + err
    store = open_store(url, "sandbox")
    assert store.read_lock("sandbox")["state"] == "released"  # type: ignore[index]
    after = run_cli("run", nb("destructive"), "--archive", url, "--actor", "bob", env=machine_b)
    assert after.returncode == 0, after.stdout + after.stderr  # free right after the holder's run

    # a machine that dies holding the lease: the other takes over once the lease expired, not before
    crashed = lease.acquire(
        store.objects, "staging", run_id="run-crashed", actor="carol", where=url, lease=2, renew=False
    )
    with pytest.raises(lease.LeaseHeld):
        lease.acquire(store.objects, "staging", run_id="run-b", actor="bob", where=url)
    deadline = datetime.now(UTC).timestamp() + 30
    while True:
        try:
            taken = lease.acquire(store.objects, "staging", run_id="run-b", actor="bob", where=url, renew=False)
            break
        except lease.LeaseHeld:
            assert datetime.now(UTC).timestamp() < deadline
            threading.Event().wait(0.2)
    assert taken.took_over_from is not None and taken.took_over_from["run_id"] == "run-crashed"
    assert not crashed.renew()
    taken.release()


# -- an apply in JupyterLab is a run of its own --------------------------------------------------------------
def _jupyter_notebook(apply: bool) -> Any:
    """The destructive test notebook with its parameters set by hand, as an operator does in JupyterLab."""
    import nbformat

    notebook = nbformat.read(nb("destructive"), as_version=4)
    params = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("apply: bool = False", f"apply: bool = {apply}").replace(
        'confirm: str = ""', 'confirm: str = "sandbox"'
    )
    params.source += '\ntoken_ref = "sandbox:audit_aws_secret_access_key"'
    notebook.cells.append(nbformat.v4.new_code_cell('secret = runbooks.secret(token_ref)\nprint("token", secret)'))
    notebook.cells.append(nbformat.v4.new_code_cell("runbooks.end_apply()"))
    return notebook


def test_an_interactive_apply_is_recorded_and_frees_the_lock_when_it_ends(
    twin: Sandbox, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    from runbooks.archive.stores import open_store

    url = _url("interactive")
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", url)
    monkeypatch.setenv("JPY_SESSION_NAME", nb("destructive"))  # what Jupyter Server tells the kernel
    for var in ("RUNBOOKS_RUN_ID", "RUNBOOKS_LOCKED_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)
    notebook = _jupyter_notebook(apply=True)
    store = open_store(url, "sandbox")
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(homes)}})
    with client.setup_kernel():
        guard_cell = next(i for i, c in enumerate(notebook.cells) if "guard_apply" in c.source)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if index == guard_cell:
                holder = store.read_lock("sandbox")
                assert holder is not None and holder["state"] == "held"  # taken when the apply was authorised
        # the apply ended (runbooks.end_apply()): recorded and unlocked while the kernel still runs
        assert client.km is not None and client.km.has_kernel
        assert store.read_lock("sandbox")["state"] == "released"  # type: ignore[index]
        entries = store.entries()
        assert len(entries) == 1 and entries[0].run_id == holder["run_id"]
    manifest = store.read_manifest(entries[0].run_id)
    assert manifest.trigger == "interactive" and manifest.status.value == "succeeded"
    assert manifest.environment == "sandbox" and manifest.actor == "e2e-tester" and manifest.destructive
    assert manifest.procedure == "destructive" and manifest.results == {"applied": True}
    assert manifest.parameters["apply"] is True and manifest.parameters["confirm"] == "sandbox"
    assert manifest.lock is not None
    record = json.loads(store.read_file(manifest.run_id, "notebook.ipynb"))
    sources = ["".join(c["source"]) for c in record["cells"]]
    assert "guard_apply" in sources[0] and sources[-1] == "runbooks.end_apply()"  # from the authorising cell on
    assert not any("apply: bool" in s for s in sources)  # cells before the authorisation are not the apply
    text = json.dumps(record)
    assert "applied" in text and "[REDACTED:sandbox:audit_aws_secret_access_key]" in text  # scrubbed as the runner
    assert twin.secret("audit_aws_secret_access_key") not in text
    assert store.verify().ok


def test_verify_reports_an_audit_bucket_without_object_lock(sandbox_factory: Any, homes: Path) -> None:
    from runbooks.archive.stores import open_store
    from runbooks.runner.run import run_procedure

    with sandbox_factory(faults=["audit-bucket-unlocked"], components=["s3"], set_env=True):
        url = _url("unlocked")
        out = run_procedure(nb("sleep"), params={"seconds": "0"}, archive_root=url)
        assert out.exit_code == 0 and not out.spooled
        report = open_store(url, "sandbox").verify()
        assert [f.kind.value for f in report.findings] == ["bucket_unlocked"], report.findings
        cli = run_cli("runs", "verify", "--archive", url)
        assert cli.returncode == 1 and "bucket_unlocked" in cli.stdout, cli.stdout + cli.stderr


def test_rotation_state_in_the_bucket_lets_only_one_resumer_proceed(twin: Sandbox, homes: Path) -> None:
    from runbooks.state import rotation as rk

    url = _url("state")
    first = rk.RotationStore.for_environment("sandbox", url)
    second = rk.RotationStore.for_environment("sandbox", url)
    assert first.path is None  # in the bucket, not on this disk
    first.save({"K": rk.KeyRotation("K", "supabase")})
    assert second.load()["K"].status == "in_progress"  # the second resumer reads the first's state ...
    first.save({"K": rk.KeyRotation("K", "supabase", completed=["issue"])})
    with pytest.raises(rk.StateConflict):  # ... and cannot overwrite what the first wrote since
        second.save({"K": rk.KeyRotation("K", "supabase", completed=["issue", "write_group"])})
    assert rk.RotationStore.for_environment("sandbox", url).load()["K"].completed == ["issue"]


@pytest.mark.parametrize("ending", ["a_cell_raises", "kernel_shutdown"])
def test_an_interactive_apply_that_does_not_reach_its_end_is_still_recorded(
    twin: Sandbox, homes: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from runbooks.archive.stores import open_store

    url = _url("interactive-end")
    monkeypatch.setenv("RUNBOOKS_ARCHIVE", url)
    monkeypatch.setenv("JPY_SESSION_NAME", nb("destructive"))
    for var in ("RUNBOOKS_RUN_ID", "RUNBOOKS_LOCKED_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)
    notebook = _jupyter_notebook(apply=True)
    notebook.cells = notebook.cells[:-2]  # without the secret's cell and without runbooks.end_apply()
    if ending == "a_cell_raises":
        notebook.cells.append(nbformat.v4.new_code_cell('raise RuntimeError("the apply broke")'))
    store = open_store(url, "sandbox")
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(homes)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError:
                    assert ending == "a_cell_raises"
                    break
        if ending == "a_cell_raises":  # ended by the failure: recorded and unlocked before the kernel exits
            assert store.read_lock("sandbox")["state"] == "released"  # type: ignore[index]
        else:
            assert store.read_lock("sandbox")["state"] == "held"  # type: ignore[index]
    assert store.read_lock("sandbox")["state"] == "released"  # type: ignore[index]
    (entry,) = store.entries()
    manifest = store.read_manifest(entry.run_id)
    assert manifest.trigger == "interactive" and manifest.results == {"applied": True}
    if ending == "a_cell_raises":
        assert manifest.status.value == "failed" and manifest.error is not None
        assert manifest.error.kind == "RuntimeError" and "the apply broke" in manifest.error.message
    else:
        assert manifest.status.value == "interrupted" and manifest.error is not None
        assert "kernel shut down" in manifest.error.message


def test_a_clean_verify_seals_and_a_sealed_run_is_checked_by_version(twin: Sandbox, homes: Path) -> None:
    from runbooks.archive.s3store import S3Store, run_key
    from runbooks.archive.samples import sample_manifest
    from runbooks.archive.stores import open_store

    url = _url("seal")
    store = open_store(url, "sandbox")
    assert isinstance(store, S3Store)
    committed = [store.commit(sample_manifest(), {"notebook.ipynb": b"{}"}) for _ in range(2)]
    assert not any(c.spooled for c in committed)
    assert store.verify().ok
    admin = twin.s3_client("admin")
    seals = admin.list_objects_v2(Bucket=AUDIT, Prefix=f"{store.prefix}/seals/").get("Contents", [])
    assert [o["Key"].rsplit("/", 1)[-1] for o in seals] == ["000000000002.json"]
    again = open_store(url, "sandbox").verify()
    assert again.ok and again.runs_checked == 2

    first = store.entries()[0]
    key = f"{store.prefix}/{run_key(first.path, 'notebook.ipynb')}"
    version = admin.head_object(Bucket=AUDIT, Key=key)["VersionId"]
    admin.delete_object(Bucket=AUDIT, Key=key, VersionId=version, BypassGovernanceRetention=True)  # governance
    for deep in (False, True):
        kinds = {(f.run_id, f.kind.value) for f in open_store(url, "sandbox").verify(deep=deep).findings}
        assert (first.run_id, "file_missing") in kinds, (deep, kinds)


def test_the_audit_site_is_built_from_the_bucket_through_a_local_mirror(twin: Sandbox, homes: Path) -> None:
    """``runbooks audit site --archive s3://...``: the runs in the bucket, copied entry for entry into a local
    mirror (only new entries on a rebuild), verified, shown."""
    from runbooks.runner.run import run_procedure

    url = _url("site")
    ids = [run_procedure(nb(name), archive_root=url).run_id for name in ("succeed", "raise")]
    site = homes / "site"
    first = run_cli("audit", "site", str(site), "--archive", url)
    assert first.returncode == 0, first.stderr
    assert "mirrored 2 new run(s)" in first.stderr and "archive intact" in first.stdout
    index = (site / "data" / "runs.js").read_text()
    assert all(i in index for i in ids)
    ids.append(run_procedure(nb("succeed"), archive_root=url).run_id)
    again = run_cli("audit", "site", str(site), "--archive", url)
    assert again.returncode == 0 and "mirrored 1 new run(s)" in again.stderr, again.stderr
    assert ids[-1] in (site / "data" / "runs.js").read_text()
    assert (homes / "site.archive-mirror" / "ledger.jsonl").is_file()
