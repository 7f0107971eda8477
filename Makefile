# overlord: `make run` serves on 127.0.0.1:8090; `make test` runs the whole gate.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
MARIADB_URL ?= mysql+pymysql://root@127.0.0.1:3306/mysql

.PHONY: help install run test lint fmt typecheck imports db-check services browser test-sqlite test-postgresql test-mariadb bench clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install overlord with its test tools

run: install ## Migrate the embedded SQLite store and serve on 127.0.0.1:8090
	$(BIN)/overlord db upgrade
	$(BIN)/overlord serve --host 127.0.0.1 --port 8090

services: ## Start PostgreSQL and MariaDB if they are down (fails loudly otherwise)
	scripts/ensure-databases.sh

browser: ## Install Debian's chromium for the console's browser test if it is missing
	scripts/ensure-chromium.sh

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict on overlord/
	$(BIN)/mypy

imports: install ## import-linter layer contracts
	$(BIN)/lint-imports

db-check: install services ## alembic check (models == migrations) on all three backends
	$(BIN)/python -m tests.dbcheck sqlite postgresql mariadb

test-sqlite: install ## The suite on SQLite
	scripts/pytest-backend.sh sqlite

test-postgresql: install services ## The suite on PostgreSQL
	scripts/pytest-backend.sh postgresql

test-mariadb: install services ## The suite on MariaDB
	scripts/pytest-backend.sh mariadb

test: install services browser lint typecheck imports db-check ## Everything CI runs: lint, types, layers, db-check, suite on 3 backends
	scripts/pytest-all.sh

bench: install services ## Benchmarks (ratios against same-run baselines)
	$(BIN)/python -m bench.run_all

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
