"""End to end: notebooks through the runner (in process and through the CLI); honest statuses."""

from __future__ import annotations

import json
from pathlib import Path

from runner_fixtures import archive_root, manifest, nb, notebook, outputs_text, run_cli, run_dirs

from runbooks.archive.manifest import RunStatus
from runbooks.archive.store import Archive
from runbooks.runner.run import run_procedure

__all__ = ["archive_root"]


def test_succeeds_and_records_results(archive_root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    out = run_procedure(
        nb("succeed"),
        params={"count": "4", "verbose": "yes", "ratio": "0.25", "mode": "slow", "marker": str(marker)},
        actor="alice",
        trigger="schedule",
        archive_root=archive_root,
    )
    assert out.status is RunStatus.SUCCEEDED and out.exit_code == 0 and out.error is None
    assert out.run_dir is not None and out.run_dir.is_relative_to(archive_root)
    assert marker.read_text() == "ran"
    m = manifest(out.run_dir)
    assert m["status"] == "succeeded" and m["actor"] == "alice" and m["trigger"] == "schedule"
    assert m["procedure"] == "succeed" and m["environment"] == "sandbox"
    assert m["parameters"]["count"] == 4 and m["parameters"]["verbose"] is True and m["parameters"]["ratio"] == 0.25
    assert m["results"]["count"] == 4
    assert m["results"]["summary"] == {"mode": "slow", "verbose": True, "ratio": 0.25}
    assert m["results"]["table"] == [{"i": i, "square": i * i} for i in range(4)]
    assert [r["status"] for r in m["results"]["checks"]] == ["PASS", "WARN"]
    assert set(m["files"]) == {"notebook.ipynb"}
    assert m["duration_seconds"] > 0 and m["code_version"] and m["host"]
    # the archive knows it (ledger + index)
    assert Archive(archive_root).read_manifest(out.run_id).status is RunStatus.SUCCEEDED
    nbj = notebook(out.run_dir)
    injected = [c for c in nbj["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "count = 4" in "".join(injected[0]["source"])
    assert nbj["metadata"]["runbook_run"]["status"] == "succeeded"
    code = [c for c in nbj["cells"] if c["cell_type"] == "code"]
    assert all(c["metadata"]["runbook_status"] == "ok" for c in code)
    text = json.dumps(nbj, ensure_ascii=False)
    assert "environment=sandbox count=4 ratio=0.25 verbose=True mode=slow" in text
    assert "1 PASS · 1 WARN · 0 FAIL" in text  # runbooks.show of check results


def test_failed_names_cell_exception_and_message(archive_root: Path) -> None:
    out = run_procedure(nb("raise"), archive_root=archive_root)
    assert out.status is RunStatus.FAILED and out.exit_code == 1
    assert out.error is not None and out.error.kind == "ValueError"
    assert out.error.message == "boom: the step failed"
    assert out.run_dir is not None
    nbj = notebook(out.run_dir)
    cell = nbj["cells"][out.error.cell_index]
    assert "raise ValueError" in "".join(cell["source"])
    assert cell["metadata"]["runbook_status"] == "failed"
    assert any(o["output_type"] == "error" and o["ename"] == "ValueError" for o in cell["outputs"])
    later = [c for c in nbj["cells"][out.error.cell_index + 1 :] if c["cell_type"] == "code"]
    assert later and all(c["metadata"]["runbook_status"] == "not_run" and not c["outputs"] for c in later)
    assert "before the failure" in json.dumps(nbj)
    assert manifest(out.run_dir)["error"]["cell_index"] == out.error.cell_index


def test_timeout_is_timed_out_not_completed(archive_root: Path) -> None:
    out = run_procedure(nb("sleep"), params={"seconds": "60"}, timeout=6, archive_root=archive_root)
    assert out.status is RunStatus.TIMED_OUT and out.exit_code == 3
    assert out.duration < 40
    assert out.error is not None and out.error.kind == "Timeout" and "6s timeout" in out.error.message
    assert out.run_dir is not None
    nbj = notebook(out.run_dir)
    cell = nbj["cells"][out.error.cell_index]
    assert "time.sleep(seconds)" in "".join(cell["source"])
    assert cell["metadata"]["runbook_status"] == "timed_out"
    assert any(o["output_type"] == "error" and o["ename"] == "Timeout" for o in cell["outputs"])
    outputs = json.dumps([o.get("text") for c in nbj["cells"] for o in c.get("outputs", []) if "text" in o])
    assert "before the sleep" in outputs  # earlier cells keep their outputs
    assert "after the sleep" not in outputs and "last cell" not in outputs


def test_killed_kernel_is_kernel_died(archive_root: Path) -> None:
    out = run_procedure(nb("kill_kernel"), archive_root=archive_root)
    assert out.status is RunStatus.KERNEL_DIED and out.exit_code == 4
    assert out.error is not None and out.error.kind == "DeadKernel"
    assert out.run_dir is not None
    nbj = notebook(out.run_dir)
    cell = nbj["cells"][out.error.cell_index]
    assert "os.kill" in "".join(cell["source"]) and cell["metadata"]["runbook_status"] == "kernel_died"
    assert "DeadKernel" in outputs_text(nbj, out.error.cell_index)
    assert "about to die" in json.dumps(nbj)


def test_cli_exit_codes_and_summary(archive_root: Path) -> None:
    ok = run_cli("run", nb("succeed"), "-p", "count=2", "--actor", "bob", "--archive", str(archive_root))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("succeeded: run ")
    assert ok.stderr == ""  # no progress when stderr is not a terminal
    failed = run_cli("run", nb("raise"), "--archive", str(archive_root))
    assert failed.returncode == 1
    assert "ValueError in cell" in failed.stderr and "boom: the step failed" in failed.stderr
    dirs = run_dirs(archive_root)
    assert [manifest(d)["status"] for d in dirs] == ["succeeded", "failed"]
    assert manifest(dirs[0])["actor"] == "bob"


def test_runs_with_inventory_environment_and_env_var(archive_root: Path) -> None:
    out = run_procedure(nb("succeed"), environment="staging", archive_root=archive_root)
    assert out.status is RunStatus.SUCCEEDED
    assert out.run_dir is not None
    m = manifest(out.run_dir)
    assert m["environment"] == "staging" and m["parameters"]["environment"] == "staging"
    assert "environment=staging" in json.dumps(notebook(out.run_dir))


def test_plain_notebook_without_parameters_cell_or_kernelspec(archive_root: Path, tmp_path: Path) -> None:
    import nbformat

    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('plain ' + 'ok')")]), path)
    out = run_procedure(str(path), archive_root=archive_root)
    assert out.status is RunStatus.SUCCEEDED and out.run_dir is not None
    nbj = notebook(out.run_dir)
    assert len(nbj["cells"]) == 1 and "plain ok" in outputs_text(nbj, 0)  # nothing injected
    refused = run_procedure(str(path), params={"x": "1"}, archive_root=archive_root)
    assert refused.status is RunStatus.REFUSED and refused.error is not None
    assert "unknown parameter 'x' for plain (its value was not recorded); known parameters: (none)" in (
        refused.error.message
    )


def test_run_procedure_inside_a_running_event_loop(archive_root: Path) -> None:
    import asyncio
    import concurrent.futures

    async def from_a_notebook() -> RunStatus:  # e.g. the demo notebook calling the runner from Jupyter
        return run_procedure(nb("raise"), archive_root=archive_root).status

    # in a thread of its own: this process may already run an event loop in its main thread (the browser tests'
    # Playwright session, when pytest-xdist puts them in the same worker)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, from_a_notebook()).result() is RunStatus.FAILED


def test_unknown_kernel_is_a_failed_run_with_a_clear_message(archive_root: Path, tmp_path: Path) -> None:
    import nbformat

    nbk = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbk.metadata["kernelspec"] = {"name": "no-such-kernel", "language": "python", "display_name": "x"}
    path = tmp_path / "nokernel.ipynb"
    nbformat.write(nbk, path)
    out = run_procedure(str(path), archive_root=archive_root)
    assert out.status is RunStatus.FAILED and out.error is not None
    assert out.error.kind == "NoSuchKernel" and "no-such-kernel" in out.error.message
    assert out.run_dir is not None and manifest(out.run_dir)["status"] == "failed"


def test_cell_tagged_raises_exception_still_fails_the_run(archive_root: Path) -> None:
    out = run_procedure(nb("raises_tagged"), archive_root=archive_root)
    assert out.status is RunStatus.FAILED and out.exit_code == 1
    assert out.error is not None and out.error.kind == "ValueError" and out.error.message == "tagged: the step failed"
    assert out.run_dir is not None
    nbj = notebook(out.run_dir)
    cell = nbj["cells"][out.error.cell_index]
    assert "raises-exception" in cell["metadata"]["tags"] and cell["metadata"]["runbook_status"] == "failed"
    assert "never printed" not in json.dumps([c.get("outputs") for c in nbj["cells"]])


def test_error_output_without_a_raise_fails_the_run(archive_root: Path, tmp_path: Path) -> None:
    import nbformat

    cells = [
        nbformat.v4.new_code_cell("try:\n    1 / 0\nexcept ZeroDivisionError:\n    get_ipython().showtraceback()"),
        nbformat.v4.new_code_cell("print('never printed')"),
    ]
    path = tmp_path / "shown.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    out = run_procedure(str(path), archive_root=archive_root)
    assert out.status is RunStatus.FAILED and out.error is not None
    assert out.error.kind == "ZeroDivisionError" and out.error.cell_index == 0
    assert out.run_dir is not None and not notebook(out.run_dir)["cells"][1]["outputs"]
