# Two commands: `make demo` and `make test`. Both create .venv once (reused afterwards).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench install clean-venv web

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml tools/install_detectron2.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel 'setuptools<81'
	$(PY) -m pip install -q -r requirements.txt
	$(PY) tools/install_detectron2.py
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_demo.py

# the web demo on http://127.0.0.1:7860 (docs/web_demo.md); WEB_ARGS="--checkpoint X.pth ..." for others
web: $(STAMP)
	$(PY) -m pip install -q -r requirements-web.txt
	$(PY) tools/web_demo.py $(WEB_ARGS)

test: $(STAMP) lint
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "# $$script" >&2; $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
