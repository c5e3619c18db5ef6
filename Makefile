# Two commands for a fresh machine with Python 3.11: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint clean

# Each stamp records that its requirements file is installed in the venv.
$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime  ## Serve on http://127.0.0.1:8080 with SQLite.
	$(BIN)/python api.py

test: $(VENV)/.dev  ## Run the whole test suite, lint included.
	$(BIN)/python -m pytest

lint: $(VENV)/.dev  ## Only the PEP 8 / PEP 257 checks.
	$(BIN)/python -m pytest tests/test_lint.py

clean:
	rm -rf $(VENV) .pytest_cache data
