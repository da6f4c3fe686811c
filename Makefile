# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make demo   run every runbook against the local twin of the hosting
#   make test   lint, format check, type check and run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# pytest-xdist workers: most of the suite waits on kernels and twins, so two workers on two cores halve the time
# (each worker brings up its own session twin on free ports). PYTEST_WORKERS=0 runs in one process. Three
# workers were faster in some runs but overload two cores (twins time out): docs/RUNNING.md, "Test suite".
# Work stealing, not xdist's default `load`: `load` hands out long runs of consecutive tests, and a worker
# was left with 3.5 minutes of end-to-end tests after the other had finished (measured).
PYTEST_WORKERS ?= 2
PYTEST_DIST ?= worksteal

.PHONY: setup browser demo test lint lab lock bench clean-sandbox

setup: $(STAMP)

# The stamp is older than requirements.txt or pyproject.toml after either changes: then everything is
# installed again. An install that fails leaves the stamp alone, so the next make retries it.
PY311 := import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s); set PYTHON=python3.11 (and remove $(VENV))" % sys.version.split()[0])

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c '$(PY311)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c '$(PY311)'
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# The audit site's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used). Installed here when missing and running as root; otherwise the exact command.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get) for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "Chromium is missing ($(CHROMIUM)); the browser tests need it. Run: sudo apt-get update && sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; }

demo: setup
	$(BIN)/runbooks demo

# pytest's exit status goes straight to make: 1 (failures), 5 (no test collected) or any other non-zero
# status fails `make test` and so CI (.ci/run).
# mypy reads its configuration (files, per-module overrides) from pyproject.toml's [tool.mypy]; `make test` runs
# it as the test tests/unit/test_types.py, beside the other tests (a minute of one core without its cache, as on
# a fresh clone); a type error fails that test with mypy's report. lint-imports checks the import layers of
# pyproject.toml's [tool.importlinter] (docs/ARCHITECTURE.md, "Layers").
test: setup browser
	$(BIN)/ruff check lib tests bench
	$(BIN)/ruff format --check lib tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check lib tests bench
	$(BIN)/ruff format --check lib tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Re-pin requirements.txt from the current environment (after changing pyproject dependencies).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > requirements.txt

clean-sandbox:
	-$(BIN)/runbooks sandbox down
	rm -rf .sandbox
