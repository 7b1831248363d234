# civicdesk developer commands (docs/development.md explains how the dev stack works).
#
#   make run     README command 1: the demo at http://127.0.0.1:8000/ (another port: PORT=8001 make run)
#   make test    README command 2: lint, types, the migrations check and the test suite
#   make mutate  mutation checks of the modules the product's promises rest on (not in CI; slow: minutes)
#
# Both bootstrap from nothing: a .venv made with Python 3.11, the pinned requirements (re-installed only when
# requirements*.txt change), then embedded PostgreSQL and Redis under .data/ (civicdesk/devstack.py).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.requirements-installed
MUTATE_STAMP := $(VENV)/.requirements-mutate-installed
DEVSTACK := $(PY) -m civicdesk.devstack

# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k intake -x". See PYTEST_XDIST below.
PYTEST_ARGS ?=
# pytest-xdist workers. The suite runs in parallel on the 2 cores we have (docs/development.md has the
# measurements); PYTEST_XDIST= (empty) runs it in one process, which is easier to debug. --dist loadscope
# keeps each module in one process, so a module's shared Celery workers start once, not once per process.
PYTEST_XDIST ?= -n auto --dist loadscope

# The interpreter a new .venv is made from: python3.11, else python3 if that is 3.11. Override: PYTHON=...
PYTHON ?= $(shell for p in python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; \
	then command -v $$p; break; fi; done)

# Recipes and the commands they start find the venv's python, celery, pytest and playwright first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# make mutate: which modules (default all; tools/mutate.py lists them) and how many run at once.
MODULES ?=
MUTATE_JOBS ?= 2

.PHONY: help bootstrap browser run test test-steps lint lint-steps pytest pytest-steps mutate fmt status stop clean distclean

help:
	@echo "civicdesk"
	@echo "  make run        the demo at http://127.0.0.1:8000/ (PORT=8001 make run for another port)"
	@echo "  make test       ruff, mypy, makemigrations --check, pytest (PYTEST_ARGS=..., PYTEST_XDIST=)"
	@echo "  make lint       ruff check, ruff format --check, mypy"
	@echo "  make fmt        ruff --fix and ruff format"
	@echo "  make pytest     only pytest: make pytest PYTEST_ARGS='tests/offices -k membership'"
	@echo "  make mutate     mutation checks (MODULES='signatures consent' for some; MUTATE_JOBS=1 for one at a time)"
	@echo "  make status     what runs from .data/"
	@echo "  make stop       stop a stray demo and the embedded PostgreSQL and Redis"
	@echo "  make clean      delete .data/ (refuses while anything runs from it)"
	@echo "  make distclean  clean, and delete .venv, staticfiles/ and tool caches"

# --- bootstrap ---------------------------------------------------------------------------------------

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "civicdesk needs Python 3.11 (python3.11, or python3 being 3.11) on PATH." >&2; \
		echo "On Debian 12: apt-get install python3.11 python3.11-venv" >&2; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV). On Debian: apt-get install python3.11-venv" >&2; exit 1; }

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
		echo "$(VENV) is not Python 3.11: remove it (rm -rf $(VENV)) and run make again" >&2; exit 1; }
	@echo "Installing requirements-dev.txt into $(VENV) (the first time takes a minute or two) ..."
	@$(PY) -m pip install --disable-pip-version-check --no-input --quiet -r requirements-dev.txt
	@$(PY) -m pip check --disable-pip-version-check >/dev/null || { \
		$(PY) -m pip check --disable-pip-version-check; exit 1; }
	@touch $@

bootstrap: $(STAMP)

# --- README command 1 --------------------------------------------------------------------------------

run: $(STAMP)
	@$(DEVSTACK) run

# --- README command 2 --------------------------------------------------------------------------------
# One `devstack exec` around all the steps: the engines start once, and stop at the end if it started them.

test: $(STAMP) browser
	@$(DEVSTACK) exec -- $(MAKE) test-steps

# The browser tests drive Debian's chromium (never a downloaded browser). README command 2 does its own set-up:
# as root with apt-get it installs chromium; otherwise it stops here, before pytest, naming the command to run.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Debian's chromium for the browser tests ..."; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make test needs Debian's chromium for its browser tests: run 'sudo apt-get install chromium'" >&2; \
			exit 1; \
		fi; \
	fi

test-steps: lint-steps
	$(PY) manage.py makemigrations --check --dry-run
	@$(MAKE) pytest-steps

lint: $(STAMP)
	@$(DEVSTACK) exec -- $(MAKE) lint-steps

# mypy runs inside `devstack exec` too: the django-stubs plugin imports the settings, which need engine URLs.
lint-steps:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

pytest: $(STAMP)
	@$(DEVSTACK) exec -- $(MAKE) pytest-steps

# pytest's exit code 5 means it collected no tests: for us that is a failure, never a pass.
pytest-steps:
	@status=0; $(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

# --- mutation checks (docs/development.md, "Mutation checks") ----------------------------------------
# Installs requirements-mutate.txt on demand (with the dev pins, so pip checks they fit together), then runs
# tools/mutate.py inside the dev stack. Each module runs on a copy of the tree under .mutate/.

$(MUTATE_STAMP): requirements-mutate.txt $(STAMP)
	@echo "Installing requirements-mutate.txt into $(VENV) ..."
	@$(PY) -m pip install --disable-pip-version-check --no-input --quiet -r requirements-dev.txt -r requirements-mutate.txt
	@$(PY) -m pip check --disable-pip-version-check >/dev/null || { \
		$(PY) -m pip check --disable-pip-version-check; exit 1; }
	@touch $@

mutate: $(MUTATE_STAMP)
	@$(DEVSTACK) exec -- $(PY) tools/mutate.py --jobs $(MUTATE_JOBS) $(MODULES)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# --- the dev stack -----------------------------------------------------------------------------------

status:
	@if [ -x $(PY) ]; then $(DEVSTACK) status; else echo "nothing runs: there is no $(VENV) yet"; fi

stop:
	@if [ -x $(PY) ]; then $(DEVSTACK) stop; else echo "nothing to stop: there is no $(VENV) yet"; fi

clean:
	@if [ -x $(PY) ]; then $(DEVSTACK) clean; else rm -rf .data; fi

distclean: clean
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache .pytest_cache .mutate mutants
