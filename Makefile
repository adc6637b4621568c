# Inkmeter: `make demo` runs the portal with demo data, `make test` runs the whole test suite.
# Both build the virtual environment from the pinned lock on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml collector/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1:8000
# pytest-xdist workers for `make test` (one per core); tests that share a fixed port or want the
# machine to themselves are grouped onto one worker (tests/conftest.py). TEST_JOBS=0: no xdist.
TEST_JOBS ?= auto

.PHONY: install demo serve test lint format lock snmpsim clean

$(STAMP): requirements-dev.lock pyproject.toml collector/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements-dev.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e . -e ./collector
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The SNMP simulator for the collector's tests runs from Debian's Python (see collector/README).
snmpsim:
	bash collector/scripts/snmpsim-venv.sh

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST)

serve: install
	$(BIN)/python manage.py runserver $(HOST)

test: install snmpsim
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadgroup

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	cd collector && ../$(BIN)/mypy --strict src

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency after editing pyproject.toml.
lock: install
	$(BIN)/uv pip compile pyproject.toml collector/pyproject.toml --python-version 3.11 -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml collector/pyproject.toml --extra dev --python-version 3.11 -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .venv-snmpsim var staticfiles .pytest_cache .mypy_cache .ruff_cache
