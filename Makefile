# The two commands of the README: `make run` (both services on the CPU, without torch) and
# `make test`.
PYTHON ?= python3
# What `make run` serves from: both services, torch-free (CLIP on ONNX Runtime). The tests run
# the AI service from it too, as the CPU image runs it.
CPU_VENV ?= .venv-cpu
# What the tests and checks run in: torch and cn-clip (the CLIP tests make their ONNX files
# with them), and the test tools.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint fuzz docs onnx sdk pg-extensions

define new_venv
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed"'
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
endef

# Each is reinstalled only when the project's dependencies change.
$(CPU_VENV)/.installed: pyproject.toml Makefile
	$(call new_venv,$(CPU_VENV))
	$(CPU_VENV)/bin/python -m pip install -e ".[ai-cpu,gateway]"
	touch $@

$(VENV)/.installed: pyproject.toml Makefile
	$(call new_venv,$(VENV))
	$(BIN)/python -m pip install -e ".[ai,gateway,test]"
	touch $@

install: $(VENV)/.installed $(CPU_VENV)/.installed

run: $(CPU_VENV)/.installed
	BIN=$(CPU_VENV)/bin scripts/run-local.sh

# Immich's own SDK (a real 3.2 client for the search tests), pinned by its lock file; without
# npm those two tests skip and say so.
sdk:
	@if command -v npm >/dev/null; then \
	  [ tests/sdk/node_modules/.package-lock.json -nt tests/sdk/package-lock.json ] || \
	    npm ci --prefix tests/sdk --no-audit --no-fund --loglevel=error || \
	    echo "npm ci failed (no registry?): the two tests that use Immich's SDK skip"; \
	else echo "npm not found: the two tests that use Immich's SDK skip"; fi

# zhparser and pgvector built from third_party/ into the local PostgreSQL server (root: apt-get
# and `make install`; seconds when current). Without them their tests skip and name this target.
pg-extensions:
	@if scripts/build-pg-extensions.sh --check; then :; \
	elif [ "$$(id -u)" = 0 ] && [ -d /usr/lib/postgresql ]; then scripts/build-pg-extensions.sh; \
	else echo "zhparser or pgvector is missing and this is not root: their tests skip (sudo make pg-extensions)"; fi

test: install sdk pg-extensions
	$(BIN)/python -m pytest

# CLIP_MODEL's ONNX files for `make run`, exported once with torch (fetches the checkpoint into
# CLIP_DOWNLOAD_ROOT when online; see the README).
onnx: $(VENV)/.installed
	$(BIN)/python -m mt_photos_ai export-onnx

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
	$(BIN)/python scripts/check-import-cycles.py aio_common gateway mt_photos_ai testing bench
	BIN=$(BIN) scripts/check-compose.sh
	BIN=$(BIN) scripts/check-kubernetes.sh
	$(BIN)/hadolint Dockerfile.gateway Dockerfile.ai db/Dockerfile testing/standin_images/*.Containerfile
