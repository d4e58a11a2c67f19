# One place to learn how to run things. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

UPSTREAM ?= http://127.0.0.1:8000

.PHONY: install proxy serve test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[proxy,redis,test]'

proxy: install
	$(BIN)/edgecache proxy --upstream $(UPSTREAM)

serve: install
	$(BIN)/edgecache serve examples.hello:app

test: install
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
