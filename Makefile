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

# The API's zip package; rebuilt by `make synth` when it is missing or older than what it copies.
LAMBDA_HANDLER := build/lambda/serving/lambda_handler.py
LAMBDA_SOURCES := $(shell find ordernimbus serving inference/store models/registry -type f \
	\( -name '*.py' -o -name '*.mako' -o -name '*.ini' -o -name '*.json' -o -name '*.sql' -o -name '*.html' \) \
	-not -path '*/__pycache__/*' 2>/dev/null)
lambda-package: $(STAMP)
	$(BIN)/python -m serving.package --out build/lambda

$(LAMBDA_HANDLER): $(STAMP) $(LAMBDA_SOURCES)
	$(BIN)/python -m serving.package --out build/lambda
	@touch $@

# CloudFormation for every stack, offline and without AWS credentials (ENV=dev|staging|prod).
# The SageMaker pipelines are compiled first, for the environment's region (step images are
# regional), with ${OrderNimbus:...} placeholders for the role, bucket and key that the ML stack
# fills in; the API's code is build/lambda (built here when missing); the monitor is a container
# image whose build context synthesis only stages (Docker runs at `cdk deploy`).
# PIPELINE_DEFS=dir synthesizes other definitions.
PIPELINE_DEFS ?= build/pipelines
SYNTH_ENV = $(or $(ENV),dev)
SYNTH_REGION = $(shell $(BIN)/python -c "from infra.config import get_config; print(get_config('$(SYNTH_ENV)').region)")
synth: $(STAMP) $(LAMBDA_HANDLER)
	@test -n "$(SYNTH_REGION)" || { echo "ENV=$(SYNTH_ENV) is not an infra environment (infra/config.py)"; exit 2; }
	$(if $(filter build/pipelines,$(PIPELINE_DEFS)),$(BIN)/ordernimbus pipeline definition --target sagemaker --placeholders --region $(SYNTH_REGION) --out-dir build/pipelines)
	$(BIN)/python -m infra.synth --env $(SYNTH_ENV) --out cdk.out --pipeline-definitions-dir $(PIPELINE_DEFS)

clean:
	rm -rf .ordernimbus build dist *.egg-info
