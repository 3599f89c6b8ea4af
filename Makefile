# Two commands on a fresh machine: `make up` (serve all four MCP servers) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8765
export MEM0_TELEMETRY := False
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: up test lint typecheck bench install clean console-assets

# The stamp is newer than pyproject.toml once the environment matches it: nothing to do.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import mcp_servers, clients, torch, qdrant_edge" 
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/alphaavatar up --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy mcp_servers character_bridge agent clients

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/memory_latency.py
	$(BIN)/python bench/locomo.py

# The console's pages, rebuilt from the committed package-lock.json (needs Node; serving them does not).
console-assets:
	cd clients/console/web && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
