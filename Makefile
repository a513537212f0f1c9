# One machine, no set-up: `make run` serves everything, `make test` checks everything.
# Both create .venv and install the package (again only when pyproject.toml changes):
# `make run` with the extra `dev`, `make test` with `dev` and `test` (the image takes neither).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per set of extras, so that `make test` after `make run` still installs the test tools.
RUN_STAMP := $(VENV)/.installed-dev
TEST_STAMP := $(VENV)/.installed-dev-test
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench chromium prometheus clean distclean

help:
	@echo "make run     set up, then run web, worker + beat, Flower (and Redis if none answers); Ctrl-C stops all"
	@echo "make test    set up, then ruff and the whole test suite (PYTEST_ARGS='-k login' to narrow it)"
	@echo "make lint    ruff only"
	@echo "make bench   the import benchmark (BENCH_ARGS='--only single,fair' to narrow it)"
	@echo "make clean   caches and build leftovers (keeps .venv and var/, which holds your database and keys)"
	@echo "make distclean  clean, and remove .venv too"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(RUN_STAMP)

# Installing dev and test together also covers what `make run` needs.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev,test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

install: $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m scripts.run

# The browser tests drive the system Chromium; without it they skip and say why.
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing chromium for the browser tests"; \
		( export DEBIAN_FRONTEND=noninteractive; \
		  apt-get update -q && apt-get install -y -q chromium ) \
		|| echo "==> could not install chromium: the browser tests will skip"; \
	else \
		echo "==> /usr/bin/chromium is missing and this is not root with apt-get: the browser tests will skip"; \
	fi

# The metrics tests run promtool and a real Prometheus (Debian's package); without them they skip and say why.
prometheus:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing prometheus for the metrics tests"; \
		( export DEBIAN_FRONTEND=noninteractive; \
		  apt-get update -q && apt-get install -y -q --no-install-recommends prometheus ) \
		|| echo "==> could not install prometheus: the Prometheus tests will skip"; \
	else \
		echo "==> prometheus/promtool are missing and this is not root with apt-get: the Prometheus tests will skip"; \
	fi

# The suite starts its own Redis when none answers; nothing else to start by hand.
test: $(TEST_STAMP) chromium prometheus
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

# The status figure needs wrk (Debian's package); without it that figure is skipped and says so.
bench: $(RUN_STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } || true
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache build test-artifacts *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
