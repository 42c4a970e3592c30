# Two commands are all a student needs:  make lab  and  make test.
# Windows without make: see README.md for the plain pip commands (the same steps).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Short experiments in notebooks and tests; the lecture profile runs longer sweeps.
export LABSERVER_PROFILE ?= ci

# Exit status 0 when a Python can run the kit (3.10 or newer).
NEW_ENOUGH := -c "import sys; sys.exit(sys.version_info < (3, 10))"

.PHONY: lab test test-fast bench clean

# (Re)install when pyproject.toml changes, or when the venv is missing or broken
# (a venv whose Python was upgraded or removed cannot start: it is made again).
# pip itself is upgraded first: Python 3.10.0-3.10.2 ship a pip too old for `pip install -e .`
# of a pyproject.toml-only project.
$(STAMP): pyproject.toml
	@$(PYTHON) $(NEW_ENOUGH) 2>/dev/null || { echo "labserver needs Python 3.10 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo "not found"). Run: make PYTHON=python3.12 test"; exit 1; }
	@if [ -e $(BIN)/python ] && ! $(BIN)/python $(NEW_ENOUGH) 2>/dev/null; then echo "$(VENV) is broken or too old: making it again"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

# JupyterLab refuses to run as root unless told: containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: $(STAMP)
	LABSERVER_PROFILE=lecture $(BIN)/python -m jupyter lab $(ROOT_FLAG) notebooks/

# Every test: pytest for tests/, nbval (lax mode: only check cells assert) for notebooks/.
# The options live in pyproject.toml and conftest.py, so `python -m pytest` alone does the same.
test: $(STAMP)
	$(BIN)/python -m pytest

# The Python tests alone, without the notebooks and the browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -x -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
