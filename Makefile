# Two entry points for a fresh machine: `make render` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CHECKOV_VENV ?= .venv-checkov
STACK ?= dev
OUT ?= build/$(STACK)

.PHONY: setup render test test-stress lint typecheck unit bench checkov clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[infra,plot,dev]'
	touch $@

# checkov pins many libraries of its own, so it lives in a venv apart from the project's.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==3.3.30'
	touch $@

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed

## The main job: evaluate the stack program offline and write every manifest to $(OUT).
render: setup
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 $(PY) -m airflow_k8s.infra render --stack $(STACK) --out $(OUT) --check

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

unit: setup
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 $(PY) -m pytest -q

## The test command CI runs: lint, types, the whole test suite.
test: lint typecheck unit

## The whole suite three times in a row with a CPU hog on one core: no test may depend on timing.
test-stress: $(VENV)/.installed
	timeout 1800 sh -c 'while :; do :; done' & hog=$$!; status=0; \
	for i in 1 2 3; do $(PY) -m pytest -q -p no:cacheprovider || { status=1; break; }; done; \
	kill $$hog; exit $$status

bench: $(VENV)/.installed
	$(PY) bench/bench_engine.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
