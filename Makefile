# The README's two commands: `make quickstart` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv quickstart test lint mlflow-suite screenshots services services-stop clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

quickstart: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/quickstart.sh

# Starts PostgreSQL and the S3 server when it can (scripts/services.sh); without them the
# tests that need them skip, unless LOOPWRIGHT_TEST_REQUIRE_SERVICES=1 (CI) makes them fail.
# The tests run in TEST_WORKERS processes (pytest-xdist), each taking a whole test file at a
# time: a file's module fixtures (a server, a browser) start once per file as before, and every fixture gives a
# test its own store, database, bucket and Redis prefix, so the workers never share state.
TEST_WORKERS ?= 2
test: venv
	@eval "$$(LW_VENV=$(VENV) scripts/services.sh start >&2 && scripts/services.sh env)"; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# What CI checks before the tests (.ci/run): lint rules, formatting, and strict types on src and
# tests (pyproject.toml's [tool.mypy] names them), and the import contracts (its
# [tool.importlinter]: dependencies point down, no cycles).
LINT_PATHS := src tests benchmarks examples

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports

# MLflow's own REST tests against `loopwright server` (docs/mlflow-compatibility.md); CI runs it.
mlflow-suite: venv
	scripts/mlflow_suite.sh

# The README's dashboard screenshots (docs/screenshots/*.png, 1280x800), shot by the browser test
# over its seeded store (needs Chromium: scripts/services.sh start installs it).
screenshots: venv
	LOOPWRIGHT_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		"tests/server/ui/test_ui_every_page.py::test_readme_screenshots[sqlite]"

services: venv
	LW_VENV=$(VENV) scripts/services.sh start

services-stop:
	scripts/services.sh stop

clean:
	rm -rf $(VENV) .services .quickstart quickstart-data .pytest_cache .mypy_cache .ruff_cache .hypothesis
