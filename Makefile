# One place to learn how to run things. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

UPSTREAM ?= http://127.0.0.1:8000

.PHONY: install tools proxy serve test lint bench clean

# Python 3.11's own pip does editable installs from pyproject.toml (PEP 660): no upgrade.
$(BIN)/python:
	$(PY) -m venv $(VENV)

# Two installs, each redone only when pyproject.toml changes: what running needs
# (`make proxy`, `make serve`: quick on a fresh machine) and the test toolchain on top.
$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[proxy]'
	@touch $@

# The example apps' frameworks, for `make serve` (on top of what running needs).
$(VENV)/.examples: $(VENV)/.run
	$(BIN)/pip install -q -e '.[proxy,examples]'
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[proxy,redis,test]'
	@touch $@ $(VENV)/.run $(VENV)/.examples

install: $(VENV)/.dev

proxy: $(VENV)/.run
	$(BIN)/edgecache proxy --upstream $(UPSTREAM)

# The edge in front of $(WORKERS) app processes on unix sockets: gunicorn workers for a
# WSGI app, uvicorn workers for an ASGI one (e.g. APP=examples.starlette_app:app).
APP ?= examples.flask_app:app
WORKERS ?= 2
serve: $(VENV)/.examples
	@echo "edgecache: $(APP) behind the edge on http://127.0.0.1:8080 ($(WORKERS) app workers, in-memory cache). Try:"
	@echo "  curl -i http://127.0.0.1:8080/                        # twice: Age and Cache-Status say hit; the worker pid stays"
	@echo "  curl -si -H 'Accept-Encoding: br' http://127.0.0.1:8080/ -o /dev/null -D -   # content-encoding: br"
	@echo "  curl -i http://127.0.0.1:8080/account                 # private: Cache-Status never says stored"
	$(BIN)/edgecache serve $(APP) --workers $(WORKERS)

# Debian tools some tests use: htpasswd (hashes made by the real tool), redis-server
# (the shared store) and chromium (tests/browser, driven by Playwright). Installed when
# missing and we may; without them those tests skip.
tools:
	@need=""; command -v htpasswd >/dev/null || need="$$need apache2-utils"; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	[ -x /usr/bin/chromium ] || need="$$need chromium"; \
	if [ -n "$$need" ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq $$need) >/dev/null 2>&1 \
			|| echo "make: could not install$$need; the tests that need them will skip"; \
		(service redis-server stop || true) >/dev/null 2>&1; \
	fi

test: install tools
	$(BIN)/ruff check edgecache tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check edgecache tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/pip install -q -e '.[bench]'
	@command -v wrk >/dev/null && command -v nginx >/dev/null \
		&& [ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] || \
		(apt-get update -qq && apt-get install -y -qq wrk nginx libnginx-mod-http-brotli-static redis-server)
	$(BIN)/python -m benchmarks.hit_throughput
	$(BIN)/python -m benchmarks.hit_scaling
	$(BIN)/python -m benchmarks.compressed_hits
	$(BIN)/python -m benchmarks.auth_throughput
	$(BIN)/python -m benchmarks.proxy
	$(BIN)/python -m benchmarks.static
	$(BIN)/python -m benchmarks.redis_tiers

clean:
	rm -rf $(VENV) .edgecache .pytest_cache
