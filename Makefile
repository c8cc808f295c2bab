# The two commands: `make demo` (set up + run the whole flow) and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data/store_item_demand_dev_stores_1_8.parquet
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test venv lint typecheck bench lambda-package synth clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# torch first, from the CPU wheel on disk: anything that pulls torch later finds it satisfied.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m ordernimbus.demo --data "$(DATA)" --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# BENCH_ARGS="--skip accuracy" leaves out the ~30-minute accuracy run; --only a,b runs just those.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

lambda-package: $(STAMP)
	$(BIN)/python -m serving.package --out build/lambda

# CloudFormation for every stack, offline. The SageMaker pipelines are compiled first, with
# ${OrderNimbus:...} placeholders for the role, bucket and region that the ML stack fills in;
# the Lambda code is build/lambda (make lambda-package). PIPELINE_DEFS=dir synthesizes other definitions.
PIPELINE_DEFS ?= build/pipelines
synth: $(STAMP)
	$(if $(filter build/pipelines,$(PIPELINE_DEFS)),$(BIN)/ordernimbus pipeline definition --target sagemaker --placeholders --out-dir build/pipelines)
	$(BIN)/python -m infra.synth --env $(or $(ENV),dev) --out cdk.out --pipeline-definitions-dir $(PIPELINE_DEFS)

clean:
	rm -rf .ordernimbus build dist *.egg-info
