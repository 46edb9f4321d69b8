# gee_fusion — everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench lab clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the one CPU build the deep extra accepts (never pulls CUDA wheels)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[deep,notebooks,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gee-fusion demo --out outputs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gee_fusion tests benchmarks ee_scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py

lab: $(STAMP)
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install --quiet 'jupyterlab>=4.2'
	$(BIN)/jupyter-lab notebooks/

clean:
	rm -rf $(VENV) outputs .pytest_cache .mypy_cache .ruff_cache
