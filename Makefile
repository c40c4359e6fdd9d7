# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: setup demo test test-quick test-slow lint docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	# the reference muP (MuReadout, MuAdamW) that tests/models/test_mup_reference.py checks our
	# rules against. Without its dependencies: it declares torchvision, and PyPI's torchvision
	# beside this torch build breaks every transformers import ("torchvision::nms does not
	# exist"); the parts we use need only torch.
	$(PIP) install -q --no-deps mup==1.0.0
	touch $@

# The main job: a ladder of transformers on the standard library's source, a Chinchilla fit,
# a held-out model 4x larger, and the report (demo/report/index.html, demo/summary.json).
# About 10 minutes on 2 cores; re-running reuses the finished runs.
demo: setup
	$(VENV)/bin/scalelab demo --out demo

# every test, the slow ones too (kill -9 and resume, the entropy floor, a two-worker sweep)
test: setup
	$(PY) -m pytest -q -m "slow or not slow"

# for editing loops: skips the slow tests
test-quick: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# the documentation site (guides, measured results, CLI and API reference) into site/;
# --strict: a broken link or a missing API entry fails the build
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info demo site
