# The two commands of the README: `make run` (both services on the CPU) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch-free AI service install (extra `ai-cpu`), which the tests also run.
CPU_VENV ?= .venv-cpu

.PHONY: run test install lint fuzz docs

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[ai,gateway,test]"
	touch $@

$(CPU_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CPU_VENV)
	$(CPU_VENV)/bin/python -m pip install --quiet -e ".[ai-cpu]"
	touch $@

install: $(VENV)/.installed $(CPU_VENV)/.installed

run: install
	BIN=$(BIN) scripts/run-local.sh

test: install
	$(BIN)/python -m pytest

# A longer fuzzing campaign than CI's, with a new seed each time.
fuzz: install
	FUZZ_SCALE=10 FUZZ_SEED= $(BIN)/python -m pytest tests/test_fuzz.py -s

# Write docs/openapi-*.json from the running services (CI checks they are current).
docs: install
	$(BIN)/python -m testing.openapi_docs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	BIN=$(BIN) scripts/check-compose.sh
	$(BIN)/hadolint Dockerfile.gateway Dockerfile.ai db/Dockerfile
