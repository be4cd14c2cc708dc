# Value in Motion. Two commands matter: `make demo` and `make test`.
# Both create the virtualenv and install everything on first use; nothing
# else is needed on the machine but Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exact tested versions (constraints); `make lock` refreshes it from pyproject.toml's ranges.
LOCK   := requirements.lock

.PHONY: demo test lint format bench bench-smoke up down status clean install lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

# Resolve pyproject.toml's ranges afresh in a scratch venv and pin the result.
# Then run `make test` (it reinstalls from the new lock) before committing it.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[dev]"
	{ echo "# The exact versions \`make test\` ran with: pip constraints for every install"; \
	  echo "# (Makefile, Dockerfile, CI via make). Refresh with \`make lock\`, then \`make test\`."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -vi '^value-in-motion'; \
	} > $(LOCK)
	rm -rf .lock-venv

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m stack demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
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
