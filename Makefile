# caseapi: `make run` serves the demo on SQLite; `make test` runs the suite.
# DATABASE_URL selects the database for both (default: an SQLite file under var/).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n 2

.PHONY: run test lint format install install-dev migrate demo check worker beat sequencer relay gunicorn clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Set up, migrate SQLite, load demo data (passwords printed) and serve on 127.0.0.1:8000.
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

## Set up and run the whole suite against DATABASE_URL (SQLite when unset).
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: install-dev
	DEBUG=1 $(BIN)/python manage.py check
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

migrate: install
	$(BIN)/python manage.py migrate --no-input

demo: install
	DEBUG=1 $(BIN)/python manage.py seed_demo

worker: install
	$(BIN)/celery -A caseapi worker --loglevel=INFO

beat: install
	$(BIN)/celery -A caseapi beat --loglevel=INFO

sequencer: install
	$(BIN)/python manage.py audit_sequencer

relay: install
	$(BIN)/python manage.py outbox_relay

gunicorn: install
	$(BIN)/gunicorn caseapi.wsgi --config gunicorn.conf.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
