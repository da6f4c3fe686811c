"""Regenerate the test-only notebooks of the runner tests: ``python tests/notebooks/make_notebooks.py``.

Notebooks are committed without outputs, with ``runbook`` metadata and a tagged ``parameters`` cell.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ENV = 'environment: str = "sandbox"  # target environment [one of: production, staging, sandbox]'


def notebook(title: str, summary: str, params: str, *cells: str, destructive: bool = False) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["runbook"] = {"title": title, "summary": summary, "destructive": destructive, "schedule": None}
    nb.cells.append(new_markdown_cell(f"# {title}\n\n{summary}"))
    pcell = new_code_cell(params)
    pcell.metadata["tags"] = ["parameters"]
    nb.cells.append(pcell)
    for src in cells:
        nb.cells.append(new_markdown_cell(src[2:]) if src.startswith("# ") and "\n" not in src else new_code_cell(src))
    return nb


NOTEBOOKS = {
    "succeed": notebook(
        "Succeeds and records results",
        "Exercises parameters of every type and runbooks.record / runbooks.show.",
        f"""{ENV}
count: int = 3  # how many rows to produce
ratio: float = 0.5  # a fraction
verbose: bool = False  # print more
mode: str = "fast"  # how to run [one of: fast, slow]
marker: str = ""  # if set, a file to create (proves a kernel ran)
token_ref: str = "env:RUNBOOKS_TEST_UNUSED"  # a secret reference (not resolved here)""",
        """import pandas as pd
import runbooks
from runbooks.checks.base import CheckResult
if marker:
    open(marker, "w").write("ran")
print(f"environment={environment} count={count} ratio={ratio} verbose={verbose} mode={mode}")""",
        """df = pd.DataFrame({"i": list(range(count)), "square": [i * i for i in range(count)]})
checks = [CheckResult.ok("demo.one", "a", "fine"), CheckResult.warn("demo.two", "b", "meh", "look at it")]
runbooks.show(checks, title="checks")
runbooks.show(df)
runbooks.record("count", count)
runbooks.record("summary", {"mode": mode, "verbose": verbose, "ratio": ratio})
runbooks.record("table", df)
runbooks.record("checks", checks)""",
    ),
    "raise": notebook(
        "Raises",
        "The second code cell raises ValueError.",
        ENV,
        'print("before the failure")',
        'raise ValueError("boom: the step failed")',
        'print("never printed")',
    ),
    "sleep": notebook(
        "Sleeps",
        "Prints, then sleeps (for --timeout and signal tests).",
        f"""{ENV}
seconds: float = 120  # how long to sleep
started_marker: str = ""  # file created (holding the kernel pid) once the sleeping cell has started""",
        """import time
print("before the sleep", flush=True)""",
        """import os
if started_marker:
    open(started_marker, "w").write(str(os.getpid()))
time.sleep(seconds)
print("after the sleep")""",
        'print("last cell")',
    ),
    "kill_kernel": notebook(
        "Kills its own kernel",
        "The kernel process kills itself with SIGKILL.",
        ENV,
        'print("about to die", flush=True)',
        "import os\nos.kill(os.getpid(), 9)",
        'print("never printed")',
    ),
    "leak_secret": notebook(
        "Tries to leak a secret",
        "Resolves a secret and puts it everywhere it can; also prints credential-looking literals.",
        f"""{ENV}
token_ref: str = "env:RUNBOOKS_TEST_SECRET"  # the secret to leak""",
        """import html, json, logging, os, subprocess, sys
import pandas as pd
from IPython.display import HTML, JSON, display
import runbooks
value = runbooks.secret(token_ref)
print("stdout:", value)
print("stderr:", value, file=sys.stderr)
logging.getLogger("leak").warning("log: %s", value)
import shlex
os.system("echo fd-level: " + shlex.quote(value))
subprocess.run(["sh", "-c", 'echo "subprocess: $0" >&2', value])
display(pd.DataFrame({"name": ["token"], "value": [value]}))
display(pd.DataFrame({"value": [value * 3]}))
display(HTML("<b>" + html.escape(value) + "</b>"))
display(JSON({"nested": {"token": value}}))
print(repr({"quoted": value}))
value""",
        """runbooks.record("leak", {"token": value, "rows": [value]})
runbooks.show({"token": value})""",
        """# credential-looking literals, assembled at run time so that this file holds none
aws_id = "AKIA" + "Q2W3E4R5T6Y7U8I9"
aws_secret = "wJalrXUtnFEMI" + "/K7MDENG/bPxRfiCY" + "9SLOWLEAK1"
sb = "sb_" + "secret_" + "N0tAReaLKeyButLooksLikeOne123"
jwt = "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".c2lnbmF0dXJlMTIzNDU2Nzg5MA"
dsn = "postgresql://app:" + "Hunter2" * 2 + "@db.internal:5432/app"
print(aws_id, "aws_secret_access_key =", aws_secret)
print(sb, jwt, dsn)""",
        'raise RuntimeError("could not authenticate with " + value)',
    ),
    "destructive": notebook(
        "A destructive step",
        "Dry run by default; applies with apply=True and confirm=<environment>.",
        f"""{ENV}
apply: bool = False  # make changes (otherwise a dry run)
confirm: str = ""  # must equal the environment to apply
started_marker: str = ""  # file created once the run holds the environment
wait_for: str = ""  # if set, wait (up to 120 s) until this file exists""",
        """import os, time
import runbooks
if started_marker:
    open(started_marker, "w").write(os.environ.get("RUNBOOKS_RUN_ID", ""))
deadline = time.time() + 120
while wait_for and not os.path.exists(wait_for) and time.time() < deadline:
    time.sleep(0.1)
print("plan: change nothing, carefully")""",
        """try:
    runbooks.guard_apply(apply, confirm, environment)
except runbooks.ApplyRefused as e:
    print(e)
else:
    runbooks.record("applied", True)
    print("applied")""",
        destructive=True,
    ),
    "refuse_param": notebook(
        "Refuses a parameter's value",
        "Validates its input and raises runbooks.BadParameter before changing anything.",
        f"""{ENV}
hostname: str = "nowhere.invalid"  # the hostname to act on""",
        'print("validating", hostname)',
        """import runbooks
raise runbooks.BadParameter("hostname", hostname, "not in the inventory", "give one of the inventory's hostnames")""",
        'print("never printed")',
    ),
    "refuse_apply": notebook(
        "A destructive step behind the gate",
        "Calls runbooks.guard_apply without catching its refusal.",
        f"""{ENV}
apply: bool = False  # make changes (otherwise a dry run)
confirm: str = ""  # must equal the environment to apply""",
        'print("plan: change nothing, carefully")',
        """import runbooks
runbooks.guard_apply(apply, confirm, environment)
print("applied")""",
        destructive=True,
    ),
    "leak_forms": notebook(
        "Leaks a secret in the forms issue 9 found",
        "A value split over stdout/stderr messages, a numeric secret recorded as a number, every line of a "
        "multi-line secret, and an exception message longer than the record keeps.",
        f"""{ENV}
token_ref: str = "env:RUNBOOKS_TEST_SECRET"  # a string secret
pin_ref: str = "env:RUNBOOKS_TEST_PIN"  # a numeric secret (an account number)
pem_ref: str = "env:RUNBOOKS_TEST_UNUSED"  # a multi-line secret (file:PATH)""",
        """import sys, time
import psycopg
from IPython.display import JSON, display
import runbooks
value = runbooks.secret(token_ref)
pin = runbooks.secret(pin_ref)
pem = runbooks.secret(pem_ref)""",
        """# one secret as several stream messages, stdout and stderr interleaved, each too short to be recognised
for i in range(0, len(value), 6):
    stream = sys.stdout if i % 12 == 0 else sys.stderr
    stream.write(value[i : i + 6])
    stream.flush()
    time.sleep(0.2)
print()""",
        """runbooks.record("account", int(pin))
runbooks.record("account_float", float(pin))
display(JSON({"account": int(pin)}))
print(f"{int(pin):,}")
int(pin)""",
        """for line in pem.splitlines():
    print("line:", line)
print("as one line:", " ".join(pem.split()))
try:
    psycopg.connect(pem.splitlines()[1], connect_timeout=1)
except psycopg.Error as e:
    print("dsn error:", e)""",
        'raise RuntimeError("could not authenticate: " + "y" * 3946 + value + " (after retries)" * 10)',
    ),
    "raises_tagged": notebook(
        "Raises in a cell tagged raises-exception",
        "nbclient lets a cell tagged raises-exception raise; the runner does not.",
        ENV,
        'print("before the failure")',
        'raise ValueError("tagged: the step failed")',
        'print("never printed")',
    ),
    "hostile": notebook(
        "A hostile author",
        "One of the runner's attack classes, chosen by `action` (issue 9): core limit, refusal classes, "
        "output flood, daemonised descendant.",
        f"""{ENV}
apply: bool = False  # unused: destructive so that the runner locks the environment
confirm: str = ""  # unused
action: str = "none"  # what to do [one of: none, rlimit, own_refusal, impostor, preflight_refusal, flood, flood_secrets, daemon]
megabytes: int = 100  # how much the flood prints
marker: str = ""  # daemon: file that receives the daemon's pid
watch: str = ""  # daemon: a file the daemon watches; it writes <marker>.saw-gone if it disappears""",
        '''import os
import resource
import subprocess
import sys

import runbooks.errors

DAEMON = """
import os, sys, time
if os.fork(): os._exit(0)
os.setsid()
if os.fork(): os._exit(0)
open(sys.argv[1], "w").write(str(os.getpid()))
while True:
    if sys.argv[2] and not os.path.exists(sys.argv[2]):
        open(sys.argv[1] + ".saw-gone", "w").write("1")
    time.sleep(0.01)
"""''',
        '''if action == "rlimit":
    print("RLIMIT_CORE", resource.getrlimit(resource.RLIMIT_CORE))
elif action == "own_refusal":

    class CustomRefusal(runbooks.errors.Refused):
        pass

    raise CustomRefusal("a refusal class nobody registered")
elif action == "impostor":

    class BadParameter(Exception):  # same name as runbooks.errors.BadParameter, not a refusal
        pass

    raise BadParameter("an ordinary failure that happens to be called BadParameter")
elif action == "preflight_refusal":
    from runbooks.procedures.flip import FlipRefused

    raise FlipRefused("preflight failed, nothing changed: origin unhealthy")
elif action == "flood":
    line = ("flood " * (1 << 20))[: 1 << 20]
    for _ in range(megabytes):
        print(line)
    print("the end of the flood")
elif action == "flood_secrets":  # credential-shaped text until the timeout stops it
    import secrets

    n = 0
    while True:
        n += 1
        pw, key = secrets.token_hex(8), ("AK" + "IA") + secrets.token_hex(8).upper()
        print(f"{n}: pass" + f"word={pw} key={key} dsn=postgres://u:{pw}@db.example/x")
elif action == "daemon":
    subprocess.run([sys.executable, "-c", DAEMON, marker, watch], check=True)
    import time

    while not os.path.exists(marker):
        time.sleep(0.01)''',
        'print("last cell")',
        destructive=True,
    ),
}
NOTEBOOKS["raises_tagged"].cells[3].metadata["tags"] = ["raises-exception"]


def main() -> None:
    for name, nb in NOTEBOOKS.items():
        for i, cell in enumerate(nb.cells):
            cell.id = f"cell-{i}"  # stable ids: regenerating does not churn the files
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
