# Two entry points for a fresh machine: `make render` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CHECKOV_VENV ?= .venv-checkov
AIRFLOW_VENV ?= .venv-airflow
AF := $(AIRFLOW_VENV)/bin/python
AIRFLOW_PACKAGES := 'apache-airflow==3.3.2' 'apache-airflow-providers-cncf-kubernetes==10.25.0' psycopg2-binary asyncpg \
	kubernetes-validate prometheus-client orjson pytest pytest-timeout hypothesis
STACK ?= dev
OUT ?= build/$(STACK)

.PHONY: setup render test test-stress lint typecheck unit test-airflow test-cluster clean-cluster bench bench-airflow checkov clean

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

# Airflow 3 and its provider pin kubernetes 36.x / protobuf 7 (Pulumi wants others): a venv of its own, with
# this package installed without its dependencies (the executor runs on the kubernetes client Airflow ships).
$(AIRFLOW_VENV)/.installed: constraints-airflow.txt pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AF) -m pip install -q --upgrade pip
	$(AF) -m pip install -q -c constraints-airflow.txt $(AIRFLOW_PACKAGES)
	$(AF) -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(AIRFLOW_VENV)/.installed

## The main job: evaluate the stack program offline and write every manifest to $(OUT).
render: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 $(PY) -m airflow_k8s.infra render --stack $(STACK) --out $(OUT) --check

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# The Airflow venv too: tests/test_snippets.py runs the docs' Airflow snippets with it.
unit: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(AIRFLOW_VENV)/.installed
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 $(PY) -m pytest -q

## The Airflow tier: the executor inside a real Airflow 3.3.2 (adapter tests, then the end-to-end run).
test-airflow: $(AIRFLOW_VENV)/.installed
	$(AF) -m pytest -q -p no:cacheprovider tests/airflow

## Opt-in, not part of `make test`: the whole platform on the real single-node Kubernetes of ../shared/real-cluster
## (up, apply, tests, down; skips naming the commands when its binaries are not built).  See README.
test-cluster: $(VENV)/.installed
	bash tests/realcluster/run.sh

## The tier's image build cache (buildah storage) and the images it imported stay for the next run; this drops them.
clean-cluster:
	rm -rf /tmp/kc/airflow-k8s

## The test command CI runs: lint, types, the whole test suite, the Airflow tier.
test: lint typecheck unit test-airflow

## The whole suite three times in a row with a CPU hog on one core: no test may depend on timing.
test-stress: $(VENV)/.installed
	timeout 1800 sh -c 'while :; do :; done' & hog=$$!; status=0; \
	for i in 1 2 3; do $(PY) -m pytest -q -p no:cacheprovider || { status=1; break; }; done; \
	kill $$hog; exit $$status

bench: $(VENV)/.installed
	$(PY) bench/bench_engine.py --tasks 3000

## 2,000 queued Airflow tasks through this executor and Airflow's KubernetesExecutor at both sides' defaults
## (3 interleaved rounds), then one DAG of 500 tasks through a real Airflow each (about 15-20 min; --quick: 2 min).
bench-airflow: $(AIRFLOW_VENV)/.installed
	$(AF) bench/bench_airflow.py --full $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
