# Two commands for a new user: `make run` starts the service, `make test` runs every check.
# Both install what they need (uv, then the locked dependencies) first.

PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv

.PHONY: install tools run test lint unit integration bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv==0.13.8
	$(UV) sync --frozen --all-extras

run: install
	$(VENV)/bin/voicepipe serve

# System tools the tests use (apt-get where missing); says what to install when it cannot.
tools:
	@scripts/test-tools

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest tests/unit -q

integration: install tools
	scripts/with-redis $(VENV)/bin/pytest tests/integration -q

# Uses the Redis at REDIS_URL (default 127.0.0.1:6379), or a throwaway one when none answers.
test: tools lint
	scripts/with-redis $(VENV)/bin/pytest -q -ra

bench: install
	$(VENV)/bin/python -m bench.foundation

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
