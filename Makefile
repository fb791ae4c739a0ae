# The commands developers run are the commands CI runs (.ci/run calls `make test` and `make e2e`).
# Every target sets up what it needs first, so each works on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml 2>/dev/null | cut -c1-12)

.PHONY: help venv tools run lint format test unit e2e bench casecheck clean

help:
	@echo "make run    serve the webhook over HTTPS on :8443 (self-signed certificate in certs/)"
	@echo "make test   lint, type-check and run the test suite"
	@echo "make e2e    end-to-end suite against a real kube-apiserver built from Go modules"
	@echo "make bench  benchmarks (never part of make test); figures go to bench/results.md"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# kustomize (for the manifest tests) from the Go module proxy; its tests skip without it.
tools:
	bash scripts/install-kustomize.sh || echo "kustomize not installed: the overlay build tests will skip"

run: venv
	$(BIN)/bulwark serve --cert-dir certs --port 8443

lint: venv
	$(BIN)/ruff check webhook tests bench
	$(BIN)/ruff format --check webhook tests bench
	$(BIN)/mypy --strict webhook
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

format: venv
	$(BIN)/ruff format webhook tests bench
	$(BIN)/ruff check --fix webhook tests bench

unit: venv tools
	$(BIN)/python -m pytest -m "not e2e" -q

test: lint unit

e2e: venv
	$(BIN)/python -m pytest tests/e2e -m e2e -v

casecheck: venv
	$(BIN)/python ../shared/tools/casecheck.py ../shared/cases/handed.yaml --bulwark $(BIN)/bulwark

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache .hypothesis
