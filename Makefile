# Every target installs what it needs into .venv from the committed lock.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False

# The documented CRITICAL and WARNING dates of the bundled sample (see README).
DEMO_DATE ?= 2011-05-13
WARNING_DATE ?= 2011-09-09

.PHONY: install demo test lint lock sample artifacts clean

install: $(STAMP)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/uv
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install -q -r requirements.lock
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install -q --no-deps -e .
	touch $@

# Regenerate the full lock from the top-level pins; commit both files.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile requirements.txt -o requirements.lock --python-version 3.11 --no-header

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)

sample: $(STAMP)
	$(BIN)/retentionops load-sample

demo: $(STAMP) $(AIRFLOW_HOME)/airflow.db
	$(BIN)/retentionops load-sample
	$(BIN)/airflow dags test retention_ops $(DEMO_DATE) > $(AIRFLOW_HOME)/demo-run.log 2>&1 \
		|| (tail -50 $(AIRFLOW_HOME)/demo-run.log; exit 1)
	@echo "DAG run log: $(AIRFLOW_HOME)/demo-run.log"
	@echo "Alert decision for $(DEMO_DATE), as stored by the DAG run:"
	@$(BIN)/retentionops decision --date $(DEMO_DATE)
	@echo "Run log row (ops_runs_log) for $(DEMO_DATE):"
	@$(BIN)/retentionops run-log --date $(DEMO_DATE)
	@echo "Files of the run (brief, chart, audiences, run log copy):"
	@ls -1 artifacts/runs/$(DEMO_DATE)/* | sed 's/^/  /'

# The committed examples in artifacts/, copied from real DAG runs on the sample.
artifacts: $(STAMP) $(AIRFLOW_HOME)/airflow.db
	$(BIN)/retentionops load-sample > /dev/null
	rm -rf artifacts/runs/$(WARNING_DATE) artifacts/runs/$(DEMO_DATE)
	$(BIN)/airflow dags test retention_ops $(WARNING_DATE) > $(AIRFLOW_HOME)/artifacts-warning.log 2>&1
	$(BIN)/airflow dags test retention_ops $(DEMO_DATE) > $(AIRFLOW_HOME)/artifacts-critical.log 2>&1
	$(BIN)/python -m retentionops.examples $(WARNING_DATE) $(DEMO_DATE)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint include/sql --disable-progress-bar
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint include/sql --disable-progress-bar

clean:
	rm -rf $(AIRFLOW_HOME) warehouse artifacts/runs
