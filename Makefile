# Parley's two set-up commands (see README):  make serve   |   make test
# Both create ./.venv and install what they need; `make test` also installs espeak-ng when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: serve test lint format system-deps clean

# Runtime only: no torch.
$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

# Everything: training (torch CPU build), export and test tools.
$(VENV)/.dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[train,dev]'
	touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime
	$(VENV)/bin/parley serve $(ARGS)

system-deps:
	@bash .ci/system-deps

test: system-deps $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
