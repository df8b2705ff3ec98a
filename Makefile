# Two commands on a fresh machine:  make tables   and   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: setup test lint tables smoke reference clean-venv

setup: $(STAMP)

# Re-installs only when pyproject.toml changes; the editable install picks up code edits.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,onnx,openvino,pipeline]'
	touch $(STAMP)

# The layering contract (pyproject [tool.importlinter], docs/architecture.md) before the tests.
# One pytest worker per core (pytest-xdist; a test file stays on one worker, so a file's fixtures
# and scratch folders are never shared across processes); `PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= auto
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# The ablation pipeline at the proxy scale (docs/proxy.md): every detection ablation 3 paired
# seeds on the generated proxy task, evaluated, paper-scale latency measured, reports/ rendered
# (the target is 90 min on 2 CPU cores; no complete run is measured yet: reports/RUNS.md). `make smoke` is the same DAG at the smoke scale (CI-sized, minutes;
# its AP says nothing). Nothing is forced: the report rules write under runs/reports/ and publish
# to reports/, so a fresh clone builds what is missing and a second run does nothing
# (docs/pipeline.md). `make tables` then records the outputs in dvc.lock (`dvc commit`: the same
# stages, profile and files DVC would have run), so `dvc status` is clean afterwards.
tables: setup
	$(VENV)/bin/snakemake --profile workflow/profiles/proxy ablation_tables
	$(VENV)/bin/dvc commit --force --quiet

smoke: setup
	$(VENV)/bin/snakemake --profile workflow/profiles/smoke ablation_tables

lint: setup
	$(VENV)/bin/lint-imports

# Regenerate tests/reference/ from the official mmdetection 3.3.0 / mmrotate 1.x, installed in a
# venv of its own outside the repo (../oracle, or $$RTMDET_ORACLE) when missing.
reference:
	$(PYTHON) tests/reference/make_reference.py

clean-venv:
	rm -rf $(VENV)
