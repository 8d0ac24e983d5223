# Stratus developer commands. `make run` and `make test` install whatever is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# the official stac-api-validator, in its own venv: it needs newer stac-validator/referencing than .venv allows
STAC_VALIDATOR_VENV := .venv-stac-api-validator
PORT ?= 8000
COLLECTIONS ?= infra/collections/default.json
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install synth bench clean conformance

run: install ## start the whole system locally on http://127.0.0.1:$(PORT)
	$(PY) -m stratus_local --port $(PORT) --collections $(COLLECTIONS)

test: install node_modules/.installed $(STAC_VALIDATOR_VENV)/.installed ## run every test
	$(PY) -m pytest

conformance: install $(STAC_VALIDATOR_VENV)/.installed ## the openeo-test-suite, the API fuzzer (schemathesis), stac-api-validator
	$(PY) -m conformance.run $(CONFORMANCE_ARGS); suite=$$?; \
	$(PY) -m conformance.fuzz $(FUZZ_ARGS); fuzz=$$?; \
	$(PY) -m conformance.stac; stac=$$?; \
	exit $$(( suite || fuzz || stac ))

install: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt constraints.txt layers/runtime/pyproject.toml containers/processing/pyproject.toml local/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(STAC_VALIDATOR_VENV)/.installed: conformance/stac-api-validator.txt
	test -x $(STAC_VALIDATOR_VENV)/bin/python || $(PYTHON) -m venv $(STAC_VALIDATOR_VENV)
	PYTHONWARNINGS=ignore $(STAC_VALIDATOR_VENV)/bin/python -m pip install --quiet -r conformance/stac-api-validator.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: install node_modules/.installed ## synthesize the CDK app into cdk.out (offline, no Docker)
	npx cdk synth --quiet

bench: install ## run the benchmarks (prints ratios against a baseline measured in the same run)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(STAC_VALIDATOR_VENV) node_modules cdk.out .pytest_cache
