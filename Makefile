# Two commands for a fresh machine with Python 3.11: `make run`, `make test`.
# `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TFLITE_VENV ?= .venv-tflite
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: help run test test-tflite test-browser postman container-check bench \
	lint redis-server wrk chromium clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 24

# Each stamp records that its requirements file is installed in the venv.
$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	touch $@

$(TFLITE_VENV)/.installed: requirements-tflite.txt
	$(PYTHON) -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/python -m pip install $(PIP_FLAGS) \
		-r requirements-tflite.txt
	touch $@

run: $(VENV)/.runtime  ## Serve on http://127.0.0.1:8080 with SQLite.
	$(BIN)/python api.py

# The Redis store is tested against a real redis-server; as root on
# Debian or Ubuntu it is installed here, elsewhere install it yourself.
redis-server:
	@command -v redis-server >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing redis-server with apt-get (the tests need it)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends redis-server \
	  >/dev/null; } || { \
	  echo "redis-server is needed by the tests: apt-get install" \
	       "redis-server (or brew install redis)"; exit 1; }

test: $(VENV)/.dev redis-server wrk  ## The whole test suite, lint included.
	$(BIN)/python -m pytest

# The page at / in a real headless Chromium, driven by Playwright. The
# browser is Debian's package (Playwright's own download is never used);
# as root on Debian or Ubuntu it is installed here, elsewhere install it.
chromium:
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing chromium with apt-get (the page's tests need it)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium \
	  >/dev/null; } || { \
	  echo "chromium is needed by the page's tests: apt-get install" \
	       "chromium"; exit 1; }

test-browser: $(VENV)/.dev chromium  ## The page at / in headless Chromium.
	$(BIN)/python -m pytest -p no:cacheprovider tests/browser

# The scaled-out service as plain processes (deploy/cluster.py): Redis,
# three replicas and nginx in front, configured from deploy/nginx/ as
# compose.yaml runs them; Ctrl-C stops every process it started.
.PHONY: cluster test-cluster nginx
cluster: $(VENV)/.runtime redis-server nginx  ## Redis, 3 replicas and nginx in front, in the foreground.
	$(BIN)/python -m deploy.cluster

# Kept out of `make test` (setup.cfg deselects the cluster marker): about
# a minute of real nginx, redis-server and api.py processes.
test-cluster: $(VENV)/.dev redis-server nginx  ## The cluster tests: kill -9, Redis down, rolling restart, slow clients.
	$(BIN)/python -m pytest -m cluster tests/test_cluster.py

# nginx fronts the cluster; as root on Debian or Ubuntu it is installed
# here, elsewhere install it yourself.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing nginx with apt-get (the cluster needs it)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends nginx \
	  >/dev/null; } || { \
	  echo "nginx is needed by the cluster and its tests: apt-get" \
	       "install nginx (or brew install nginx)"; exit 1; }

# Prediction tests on tflite-runtime 2.14 + NumPy 1.x instead of LiteRT.
test-tflite: $(TFLITE_VENV)/.installed  ## Prediction tests on tflite-runtime + NumPy 1.x.
	$(TFLITE_VENV)/bin/python -c "from app.inference.runtime import \
		RUNTIME; assert RUNTIME == 'tflite-runtime', RUNTIME"
	$(TFLITE_VENV)/bin/python -m pytest -p no:cacheprovider \
		tests/test_predict_api.py tests/test_model_repository.py

# The Postman collection, run by newman against a live server of its own.
postman: $(VENV)/.runtime  ## Postman collection via newman (Node.js 16+).
	PYTHON=$(BIN)/python postman/run-newman.sh

# The real Dockerfile built with podman and tested running (root, Debian 12).
container-check:  ## Build the image and test it as it runs in production.
	bash tests/container/check.sh

# The benchmark's load generator, a C client (bench/load.py says why);
# as root on Debian or Ubuntu it is installed here, elsewhere install it
# yourself.
wrk:
	@command -v wrk >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing wrk with apt-get (the benchmark and its tests" \
	       "need it)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends wrk \
	  >/dev/null; } || { \
	  echo "wrk is needed by the benchmark and its tests: apt-get" \
	       "install wrk (or brew install wrk)"; exit 1; }

# Throughput, latency and memory against the in-process limit, a naive
# server and a bare cheroot app, all measured in one run (a few minutes).
bench: $(VENV)/.runtime wrk nginx  ## Benchmark; prints a Markdown table.
	$(BIN)/python -m bench

lint: $(VENV)/.dev  ## Only the PEP 8 / PEP 257 checks.
	$(BIN)/python -m pytest tests/test_lint.py

clean:  ## Remove the virtualenvs, test caches and the local database.
	rm -rf $(VENV) $(TFLITE_VENV) .pytest_cache .hypothesis .schemathesis \
		data postman/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
