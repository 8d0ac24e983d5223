# Stratus developer commands. `make run` and `make test` install whatever is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# the official stac-api-validator, in its own venv: it needs newer stac-validator/referencing than .venv allows
STAC_VALIDATOR_VENV := .venv-stac-api-validator
PORT ?= 8000
COLLECTIONS ?= infra/collections/default.json
# pytest-xdist workers for `make test`: one per core; TEST_WORKERS=0 runs every test in one process.
TEST_WORKERS ?= auto
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install synth bench clean conformance portal browser

run: install portal ## start the whole system locally on http://127.0.0.1:$(PORT) (the portal at /portal/)
	$(PY) -m stratus_local --port $(PORT) --collections $(COLLECTIONS)

test: install node_modules/.installed portal browser $(STAC_VALIDATOR_VENV)/.installed ## run every test
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

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

portal: portal/dist/index.html ## build the customer portal (portal/dist, served at /portal/)

portal/node_modules/.installed: portal/package.json portal/package-lock.json
	npm ci --prefix portal --no-audit --no-fund --loglevel=error
	touch $@

portal/dist/index.html: portal/node_modules/.installed portal/build.mjs $(wildcard portal/src/*)
	cd portal && node build.mjs

# The browser tests drive Debian's Chromium (Playwright downloads no browser): installed with apt when missing
# and running as root (as CI does); otherwise say how.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || { echo "Chromium is missing: sudo apt-get install chromium"; exit 1; }

synth: install node_modules/.installed portal ## synthesize the CDK app into cdk.out (offline, no Docker)
	npx cdk synth --quiet

bench: install ## run the benchmarks (prints ratios against a baseline measured in the same run)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(STAC_VALIDATOR_VENV) node_modules cdk.out .pytest_cache portal/node_modules portal/dist test-artifacts
