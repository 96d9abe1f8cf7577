# The two commands a newcomer runs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup bytecode run train test lint bench sample-data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

# The project's own modules, compiled once: an editable install leaves them as source, and where
# PYTHONDONTWRITEBYTECODE is set (containers, CI images) every start compiled 34 modules again (80 ms of the
# first frame). Only changed files are compiled; a stale .pyc is never used (Python checks the source's mtime).
bytecode: setup
	$(BIN)/python -m compileall -q engine ffdv_tui

# Opens the workbench on the bundled sample data.
run: bytecode
	$(BIN)/ffdv-tui --data sample_data --runs runs

train: setup
	$(BIN)/ffdv train --data sample_data

test: setup lint
	$(BIN)/python -m pytest -q

# Lint and import order (ruff), and the layering law (import-linter's contracts in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: bytecode
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_runstore.py
	$(BIN)/python bench/bench_tui.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_matrix.py
	$(BIN)/python bench/bench_leakage.py
	$(BIN)/python bench/summary.py

sample-data: setup
	$(BIN)/python scripts/make_sample_data.py --out sample_data

clean:
	rm -rf $(VENV) runs .pytest_cache
