# muniportal: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "muniportal needs Python 3.11 (found %d.%d)" % sys.version_info[:2])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

## make run: install, migrate, load the demo city, start every service, the gateway
## (http://localhost:8000), the processor sandbox and the local mailbox.
run: venv
	$(BIN)/muniportal run

## make test: lint, then the whole suite against real RabbitMQ, PostgreSQL and SMTP.
test: venv lint
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: run every benchmark in bench/, JSON results in var/bench/.
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
