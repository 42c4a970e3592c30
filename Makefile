# Two commands are all a student needs:  make lab  and  make test.
# Windows without make: see README.md for the plain pip commands.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Short experiments in notebooks and tests; the lecture profile runs longer sweeps.
export LABSERVER_PROFILE ?= ci

.PHONY: lab test test-fast bench clean

# (Re)install when pyproject.toml changes, or when the venv is missing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

# JupyterLab refuses to run as root unless told: containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: $(STAMP)
	LABSERVER_PROFILE=lecture $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

# Every test: pytest for tests/, nbval (lax mode: only check cells assert) for notebooks/.
test: $(STAMP)
	$(BIN)/python -m pytest $(wildcard tests) notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -p no:cacheprovider

# The Python tests alone, without the notebooks and the browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -p no:cacheprovider -x -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
