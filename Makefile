# Value in Motion. Two commands matter: `make demo` and `make test`.
# Both create the virtualenv and install everything on first use; nothing
# else is needed on the machine but Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench bench-smoke up down status clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m stack demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(PY) -m pytest -q tests/bench

up: $(STAMP)
	$(PY) -m stack up

down: $(STAMP)
	$(PY) -m stack down

status: $(STAMP)
	$(PY) -m stack status

clean:
	$(PY) -m stack down || true
	rm -rf .data
