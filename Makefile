# Portico: `make run` starts it on embedded defaults, `make test` runs every test. Nothing else needed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Reinstall whenever pyproject.toml changes. `make run` needs Portico's own dependencies only; the tests,
# lint and benchmarks also need the `test` extra (browsers' driver, moto, mypy...), three times the install.
SUM        := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP  := $(VENV)/.installed-run-$(SUM)
STAMP      := $(VENV)/.installed-test-$(SUM)

.PHONY: run test lint install system-deps bench bench-deps bench-quick soak clean

run: $(RUN_STAMP)
	PORTICO_ENVIRONMENT=development $(VENV)/bin/portico up

test: $(STAMP) system-deps
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

install: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@ $(RUN_STAMP)

# A venv with the test extra serves `make run` as it is.
$(RUN_STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -e $(STAMP) || { $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e .; }
	rm -f $(VENV)/.installed-run-*
	touch $@

# Browser tests use Debian's Chromium and the PDF checks use poppler; install them when we can (root).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdfsig >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing fonts-dejavu-core; \
	  else \
	    echo "warning: missing$$missing (install them with apt-get as root); those tests will not run"; \
	  fi; \
	fi

bench: $(STAMP) bench-deps
	$(PY) -m bench

bench-quick: $(STAMP) bench-deps
	$(PY) -m bench --quick

# P4's load generator is wrk (a C program, so it does not compete with the server for the GIL); without
# it the benchmark falls back to a Python load generator and says so in the table.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; \
	  else \
	    echo "warning: wrk is missing (apt-get install wrk); P4 uses the Python load generator"; \
	  fi; }
	@# P2b's peer signing engines run in Node.js: the versions pinned in bench/node/package-lock.json.
	@command -v node >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
	  else \
	    echo "warning: Node.js is missing (apt-get install nodejs npm); P2b reports its peers as not measured"; \
	  fi; }
	@if command -v npm >/dev/null 2>&1 && \
	  ! [ bench/node/node_modules/.package-lock.json -nt bench/node/package-lock.json ]; then \
	  npm ci --prefix bench/node --no-audit --no-fund --loglevel=error; \
	fi

soak: $(STAMP)
	PORTICO_SOAK=long $(PY) -m pytest -m soak -p no:randomly

clean:
	rm -rf $(VENV) var test-output .pytest_cache .mypy_cache .ruff_cache
