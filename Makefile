# Every target installs what it needs into .venv from the committed lock.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
# Python never writes bytecode when PYTHONDONTWRITEBYTECODE is set (as in some CI and
# sandbox environments): then every process - the test run, each CLI, Airflow or MCP
# subprocess - compiles airflow, pandas and google-* from source again (seconds each).
# Compiling the installed packages once after each install makes that cost go away.
BYTECODE := $(VENV)/.bytecode
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False

# The sample's dates are from 2011: the age rule (notify_max_age_days, docs/incidents.md)
# would withhold every delivery of its runs, so the sample targets turn it off.
export RETENTIONOPS_NOTIFY_MAX_AGE_DAYS ?= 0

# The Airflow pool of the DuckDB tasks (operators.DUCKDB_POOL; a test keeps them equal).
DUCKDB_POOL := retentionops_duckdb

# Where the playbook simulator writes the Slack messages and tickets it "created".
SIM_OUT ?= artifacts/playbook_sim

# The documented CRITICAL and WARNING dates of the bundled sample (see README).
DEMO_DATE ?= 2011-05-13
WARNING_DATE ?= 2011-09-09

.PHONY: install demo test test-all test-fast test-e2e test-production test-system lint typecheck lock \
	sample artifacts airflow bench mcp-demo bigquery-smoke replay clean

# Run a command with the local playbook simulator standing in for the Make webhook: it
# listens on a free port of 127.0.0.1, writes its (secret) hook URL to a file, and the
# `make_webhook` connection is built from that file; the simulator stops when the command
# ends, whatever happens.
define with_playbook_sim
	set -e; url_file=$(AIRFLOW_HOME)/playbook_url; rm -f $$url_file; \
	$(BIN)/python -m devtools.playbook_sim --port 0 --out $(SIM_OUT) \
		--url-file $$url_file > $(AIRFLOW_HOME)/playbook-sim.log 2>&1 & sim=$$!; \
	trap "kill $$sim 2>/dev/null || true" EXIT; \
	for i in $$(seq 100); do [ -s $$url_file ] && break; sleep 0.1; done; \
	[ -s $$url_file ] || { cat $(AIRFLOW_HOME)/playbook-sim.log; exit 1; }; \
	export AIRFLOW_CONN_MAKE_WEBHOOK="{\"conn_type\": \"http\", \"host\": \"$$(cat $$url_file)\"}"; \
	$(1)
endef

install: $(BYTECODE)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)

# The development environment: the runtime and development locks, then the package itself
# (editable, so the CLI runs this checkout's code and finds its include/ folder).
$(STAMP): requirements-dev.lock requirements.lock pyproject.toml | $(BIN)/uv
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install -q -r requirements-dev.lock
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/uv pip install -q --no-deps -e .
	touch $@

$(BYTECODE): $(STAMP)
	@echo "Compiling the installed packages to bytecode (once per install)..."
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

# Regenerate both locks from the top-level pins and commit them with the .txt files:
# requirements.lock (runtime: what `pip install .`, the Docker image and Composer need) from
# requirements.txt, then requirements-dev.lock (runtime + tests and linters) with the runtime
# lock as constraints, so both pin the same version of every runtime package.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile requirements.txt -o requirements.lock --python-version 3.11 --no-header
	$(BIN)/uv pip compile requirements.txt requirements-dev.txt -c requirements.lock \
		-o requirements-dev.lock --python-version 3.11 --no-header

# An Airflow metadata database (SQLite, $(AIRFLOW_HOME)/<name>.db), migrated, with the
# one-slot pool every task opening the DuckDB warehouse runs in (plugins/retentionops/
# operators.py: DuckDB allows one writer, also across a backfill's parallel runs). The
# <name>.ready stamp says both are done; `airflow pools set` is idempotent.
$(AIRFLOW_HOME)/%.ready: $(BYTECODE)
	mkdir -p $(AIRFLOW_HOME)
	export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(AIRFLOW_HOME)/$*.db; \
	{ $(BIN)/airflow db migrate && $(BIN)/airflow pools set $(DUCKDB_POOL) 1 \
		"DuckDB allows one writer: every task opening the warehouse, one at a time"; \
	} > $(AIRFLOW_HOME)/$*-migrate.log 2>&1 || { cat $(AIRFLOW_HOME)/$*-migrate.log; exit 1; }
	touch $@

sample: $(BYTECODE)
	$(BIN)/retentionops load-sample

# `airflow dags test` (make demo, make artifacts) keeps its runs in a metadata database of
# its own: it dates a run's start at its logical date (a 2011 run then lasts ~15 years in the
# UI) and replaces any run of that date, so the UI's database (`make airflow`) never gets
# them and a date can still be triggered from the UI.
DAGS_TEST_DB := export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(AIRFLOW_HOME)/dags-test.db

# Runs as often as you like: the second run finds the incident's event in the deliveries
# ledger, sends nothing and says so (RESEND=1 sends it again, with the same dedupe_key).
demo: $(BYTECODE) $(AIRFLOW_HOME)/dags-test.ready
	$(BIN)/retentionops load-sample
	@echo "Running the DAG for $(DEMO_DATE) (production rollout, playbook simulator on 127.0.0.1)..."
	@$(call with_playbook_sim, $(DAGS_TEST_DB); export RETENTIONOPS_ROLLOUT_MODE=production; \
		$(BIN)/airflow dags test retention_ops $(DEMO_DATE) $(if $(RESEND),-c '{"resend": true}') \
		> $(AIRFLOW_HOME)/demo-run.log 2>&1 || (tail -50 $(AIRFLOW_HOME)/demo-run.log; exit 1))
	@echo "DAG run log: $(AIRFLOW_HOME)/demo-run.log"
	@$(BIN)/python -m devtools.demo $(DEMO_DATE) --sim-out $(SIM_OUT)

# The committed examples in artifacts/, copied from real DAG runs on the sample, in a
# warehouse of their own (so the runs are first deliveries, whatever the demo did before).
artifacts: export RETENTIONOPS_DUCKDB_PATH := $(AIRFLOW_HOME)/artifacts.duckdb
artifacts: $(BYTECODE) $(AIRFLOW_HOME)/dags-test.ready
	rm -f $(RETENTIONOPS_DUCKDB_PATH)
	$(BIN)/retentionops load-sample > /dev/null
	rm -rf artifacts/runs/$(WARNING_DATE) artifacts/runs/$(DEMO_DATE)
	@$(call with_playbook_sim, $(DAGS_TEST_DB); export RETENTIONOPS_ROLLOUT_MODE=production; \
		$(BIN)/airflow dags test retention_ops $(WARNING_DATE) > $(AIRFLOW_HOME)/artifacts-warning.log 2>&1; \
		$(BIN)/airflow dags test retention_ops $(DEMO_DATE) > $(AIRFLOW_HOME)/artifacts-critical.log 2>&1)
	$(BIN)/python -m devtools.examples $(WARNING_DATE) $(DEMO_DATE)

# The Airflow UI on http://127.0.0.1:8080 without Docker: api-server, scheduler,
# dag-processor and triggerer from the venv (devtools/airflow_local.py; their logs in
# .airflow/logs/local/), this repository's dags/ and plugins/, SQLite metadata in .airflow/,
# the sample loaded and the playbook simulator as the make_webhook connection. Private by
# default: it listens on 127.0.0.1 only and asks for a login (user admin; the password is
# generated on the first start, shown once, and kept in .airflow/, mode 0600).
# `make airflow HOST=0.0.0.0` (or an address) serves it beyond this machine, with a warning;
# only HOST given on the command line counts (some shells export HOST=<hostname>).
# Ctrl-C or SIGTERM (make passes it on: the recipe execs the launcher) stops every process it
# started, LocalExecutor workers and tasks included.
# AIRFLOW_PORT (8080) and AIRFLOW_PARALLELISM (4 LocalExecutor workers) can be changed.
AIRFLOW_PORT ?= 8080
AIRFLOW_PARALLELISM ?= 4
AIRFLOW_BIND := 127.0.0.1
ifeq ($(origin HOST),command line)
ifneq ($(strip $(HOST)),)
AIRFLOW_BIND := $(strip $(HOST))
endif
endif
airflow: $(BYTECODE) $(AIRFLOW_HOME)/airflow.ready
	$(BIN)/retentionops load-sample > /dev/null
	@export PATH=$(CURDIR)/$(BIN):$$PATH RETENTIONOPS_CATCHUP=false \
		RETENTIONOPS_SCHEDULE_END_DATE=2011-12-09 \
		AIRFLOW__CORE__PARALLELISM=$(AIRFLOW_PARALLELISM); \
	exec $(BIN)/python -m devtools.airflow_local --host $(AIRFLOW_BIND) --port $(AIRFLOW_PORT) \
		--playbook-sim $(SIM_OUT)

# The tests, in layers (one folder and marker each: README, "Tests"); each run prints its
# 15 slowest tests.
#   make test      the everyday gate: lint, typecheck, unit, sql, dags and the whole-DAG
#                  smoke runs
#                  (one per branch, a failed step, a failing webhook): under 4 minutes
#   make test-all  everything, what CI runs (.ci/run): + e2e, production, system
# PYTEST_ARGS passes options on (e.g. PYTEST_ARGS="-x -k ledger").
SMOKE := unit or sql or dags or smoke
test: lint typecheck
	$(BIN)/pytest -q -m "$(SMOKE)" $(PYTEST_ARGS)

test-all: lint typecheck
	$(BIN)/pytest -q $(PYTEST_ARGS)

# One layer at a time.
test-fast: $(BYTECODE)
	$(BIN)/pytest -q -m "unit or sql" $(PYTEST_ARGS)

test-e2e: $(BYTECODE)
	$(BIN)/pytest -q -m e2e $(PYTEST_ARGS)

# The production-path suite alone (ZetaSQL analysis and differential runs, the GCS emulator,
# the compose schema): docs/production-path.md.
test-production: $(BYTECODE)
	$(BIN)/pytest -q -m production $(PYTEST_ARGS)

# The real commands and processes: a scheduler's backfill, make demo, make airflow, pip.
test-system: $(BYTECODE)
	$(BIN)/pytest -q -m system $(PYTEST_ARGS)

# The DAG's SQL for one date on a real BigQuery dataset, compared with DuckDB. Needs
# RETENTIONOPS_BIGQUERY_PROJECT and Google application default credentials (says so and
# exits 2 otherwise); RETENTIONOPS_BIGQUERY_DATASET (default retentionops_smoke) and
# _LOCATION (EU) choose the dataset. Not part of `make test`: it needs the network.
bigquery-smoke: $(BYTECODE)
	$(BIN)/python scripts/bigquery_smoke.py $(if $(SMOKE_DATE),--date $(SMOKE_DATE))

lint: $(BYTECODE)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint include/sql --disable-progress-bar

# mypy, strict, on the files pyproject.toml's [tool.mypy] lists (a list that only grows).
typecheck: $(BYTECODE)
	$(BIN)/mypy

# A year of mornings with faults, on a copy of the warehouse (the sample unless loaded
# otherwise) against the playbook simulator: what reached people and every broken
# invariant, exit 1 if any (docs/incidents.md, "Replay"). REPLAY_FAULTS= for none.
REPLAY_FROM ?= 2010-12-01
REPLAY_TO ?= 2011-12-09
REPLAY_FAULTS ?= tests/system/replay_faults.yaml
replay: $(BYTECODE)
	@test -f warehouse/retentionops.duckdb || $(BIN)/retentionops load-sample > /dev/null
	$(BIN)/retentionops replay --from $(REPLAY_FROM) --to $(REPLAY_TO) \
		$(if $(REPLAY_FAULTS),--faults $(REPLAY_FAULTS)) --keep $(AIRFLOW_HOME)/replay

# The design's 90-second demo through the MCP server (stdio), in a throwaway workspace.
mcp-demo: $(BYTECODE)
	$(BIN)/python scripts/demo_90s.py

# Speed and memory at 10 k, 100 k and 1 M customers against the DuckDB floor and a pandas
# peer; writes bench/results.md and bench/results.json (about 12 minutes on 2 cores).
bench: $(BYTECODE)
	PYTHONPATH=plugins $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(AIRFLOW_HOME) warehouse artifacts/runs
