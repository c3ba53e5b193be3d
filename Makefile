# Milepost — `make help` lists the targets.
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := .tools/bin/uv
UV_VERSION := 0.13.8
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PORT ?= 8001
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install widget charts wheel run worker test test-python test-browser lint format bench faults browser-deps

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install the pinned Python dependencies into .venv (from uv.lock)
	$(UV) sync --frozen --quiet

# The SDK and the charts rebuild only when their sources or lock files change (stamp files in
# node_modules/), so `make test` run twice at once (.ci/run) never builds the same files twice.
WIDGET_BUILT := widget/node_modules/.milepost-built
CHARTS_BUILT := charts/node_modules/.milepost-built

widget: ## Build the browser SDK into static/milepost/
	@[ -f static/milepost/milepost.js ] || rm -f $(WIDGET_BUILT)
	@$(MAKE) -s --no-print-directory $(WIDGET_BUILT)

widget/node_modules/.package-lock.json: widget/package-lock.json
	npm --prefix widget ci --no-audit --no-fund --loglevel=error

$(WIDGET_BUILT): widget/node_modules/.package-lock.json widget/package.json widget/tsconfig.json $(shell find widget/src widget/scripts -type f)
	npm --prefix widget run --silent build
	@touch $@

charts: ## Build the admin dashboards' charts (Apache ECharts) into static/analytics/
	@[ -f static/analytics/charts.js ] || rm -f $(CHARTS_BUILT)
	@$(MAKE) -s --no-print-directory $(CHARTS_BUILT)

charts/node_modules/.package-lock.json: charts/package-lock.json
	npm --prefix charts ci --no-audit --no-fund --loglevel=error

$(CHARTS_BUILT): charts/node_modules/.package-lock.json charts/package.json $(shell find charts/src charts/scripts -type f)
	npm --prefix charts run --silent build
	@touch $@

wheel: install widget charts ## Build the wheels of Milepost (with the SDK) and of its Python client into dist/
	$(UV) build --wheel --quiet --out-dir dist .
	$(UV) build --wheel --quiet --out-dir dist clients/python

run: export PUBLIC_URL ?= http://$(HOST):$(PORT)
run: export DEMO_HOST_URL ?= http://localhost:$(DEMO_PORT)
run: install widget charts ## Start the product on http://$(HOST):$(PORT) with a demo workspace
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_demo_engagement
	$(PY) manage.py analytics_store migrate
	$(PY) manage.py run_milepost --host $(HOST) --port $(PORT) --demo-port $(DEMO_PORT)

worker: install ## Run a Celery worker and beat (production mode, needs REDIS_URL)
	$(VENV)/bin/celery -A milepost worker --beat --loglevel=INFO

browser-deps: ## Install Debian's Chromium for the browser tests, if it is missing
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install widget charts browser-deps ## Install what the tests need and run the whole suite
	@if [ -f widget/package.json ]; then npm --prefix widget test; fi
	npm --prefix charts run --silent typecheck
	SECRET_KEY="$${SECRET_KEY:-milepost-test-suite-only-key}" $(PY) -m pytest

bench: install widget ## Benchmarks on PostgreSQL + Redis (figures in bench/README.md; not tests)
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/ingest.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/widget.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/analytics.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/journey_rollups.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/store_reports.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/analytics_store.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/dashboards.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/engagement.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/record_cpu.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/socket_cpu.py
	SECRET_KEY="$${SECRET_KEY:-milepost-bench-only-key}" $(PY) bench/realtime.py

faults: install ## Fault suite on its own PostgreSQL + Redis (SCENARIOS="…", FAULTS_OPTIONS="--soak-minutes 10"; README)
	$(PY) bench/faults.py $(SCENARIOS) $(FAULTS_OPTIONS)

lint: install ## ruff (lint + format check), mypy (--strict for clients/python), and Django's deploy check on production settings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	@# The Python client is a typed library for other code: strict, with its own settings.
	$(VENV)/bin/mypy --config-file clients/python/pyproject.toml clients/python/src/milepost_client
	@# Only what the README asks a production start to set: HTTPS must need nothing more.
	env -u DATABASE_URL -u REDIS_URL DEBUG=false ALLOWED_HOSTS=milepost.example.com \
		PUBLIC_URL=https://milepost.example.com \
		SECRET_KEY="deploy-check-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(48))')" \
		$(PY) manage.py check --deploy --fail-level WARNING

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
