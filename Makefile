# The two commands: `make dev` and `make test` (`make test-fast` for quick feedback). Each
# creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: dev test test-fast lint format clean examples bench smoke-upstream worker-bundle

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# wrangler, pinned by package-lock.json: the Worker's dry-run deploy and the bridge that the
# Cloudflare adapters' contract tests run against (tests/cf_bridge); pyodide: the Worker's
# runtime in tests/pyodide. npm's cache of their tarballs stays in .cache/npm.
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --prefer-offline --cache .cache/npm

# The deployable Worker: sources staged in build/worker/, its Python packages for Pyodide 314
# in python_modules/, from requirements/worker-pyodide.txt (wheels cached in .cache/).
worker-bundle: $(STAMP)
	$(BIN)/python -m scripts.vendor_worker

dev: $(STAMP)
	$(BIN)/avatar dev

# The upstream smoke (torch's CPU build, upstream, ffmpeg: its own environment) runs beside
# the main suite, whose live stacks spend much of their time waiting; its log follows the
# suite's report.
test: $(STAMP) $(NODE_STAMP) worker-bundle
	scripts/ensure_chromium.sh
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	mkdir -p .cache
	scripts/upstream_smoke.sh > .cache/upstream-smoke.log 2>&1 & smoke=$$!; \
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered \
		&& $(BIN)/python scripts/check_coverage.py; suite=$$?; \
	wait $$smoke; smoke_status=$$?; \
	echo "--- upstream smoke (scripts/upstream_smoke.sh) ---"; cat .cache/upstream-smoke.log; \
	[ $$suite -eq 0 ] && [ $$smoke_status -eq 0 ]

# Quick feedback, without Node, coverage or the suites of real processes: the unit tests and
# the local adapters' contract suites (the Cloudflare side needs wrangler, or a moto server
# for the presigner). tests/conftest.py gives each test its layer.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "unit or contract" -k "not (contract and cloudflare)" \
		--ignore=tests/cf_bridge

# The real upstream InfiniteTalk, through the project's engine, in both modes, on CPU with
# tiny random weights (tests/upstream_smoke). Its own environment is cached under .cache/.
smoke-upstream:
	scripts/upstream_smoke.sh

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

examples: $(STAMP)
	$(BIN)/python examples/make_examples.py

# The edge's hot paths against a FastAPI baseline and bare Litestar (bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.http_paths

clean:
	rm -rf $(VENV) .avatar .coverage* coverage.xml .pytest_cache .ruff_cache .mypy_cache \
		.import_linter_cache .grimp_cache
