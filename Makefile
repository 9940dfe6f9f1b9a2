# The same targets serve people and CI (.ci/run calls `make test`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test test-slow lint bench-throughput bench-api-list bench-capture bench-pacing bench-estimation bench-up-pace bench-group-commit bench-peers bench-peers-durable bench-compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## The first command: install, then run the all-in-one server with the demo on SQLite.
up: $(VENV)/.installed
	cd examples && ../$(BIN)/pacer demo init && ../$(BIN)/pacer up --jobs-dir jobs

## The second command: install the test tools, start PostgreSQL if needed, lint and test.
test: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -m "not slow and not restarts_postgres and not alone" -n 2 --dist loadfile
	$(BIN)/pytest -m "restarts_postgres or alone"

test-slow: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/pytest -m slow

bench-throughput: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/python bench/throughput.py

bench-api-list: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/python bench/api_list.py

bench-capture: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/python bench/capture.py

bench-pacing: $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/pacing.py

bench-estimation: $(VENV)/.installed-test
	$(BIN)/python bench/estimation.py

bench-up-pace: $(VENV)/.installed-test
	$(BIN)/python bench/up_pace.py $(ARGS)

bench-group-commit: $(VENV)/.installed-test
	$(BIN)/python bench/group_commit.py $(ARGS)

## Before and after: bench/throughput.py on BASE (a git revision) and on the work tree, interleaved.
BASE ?= HEAD
bench-compare: $(VENV)/.installed-test
	scripts/ensure-postgres.sh
	$(BIN)/python bench/compare.py --base $(BASE) $(ARGS)

## Pacer side by side with its peers; they are installed into bench/peers/.venv, never here.
bench-peers:
	bench/peers/run.sh $(ARGS)

bench-peers-durable:
	bench/peers/run.sh --durable-redis $(ARGS)

clean:
	rm -rf $(VENV) examples/pacer.db* examples/data examples/admin-token
