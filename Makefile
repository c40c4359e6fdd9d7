# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: setup demo test test-slow lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@

# Until the study issue lands, the main job is "how big is it": every preset, then the
# 405B question (memory on 80 GiB devices, time for 15.6T tokens on 16,384 H100s).
demo: setup
	$(VENV)/bin/scalelab presets
	$(VENV)/bin/scalelab count llama-3.1-405b --seq-len 8192 --causal --recompute full \
		--device-memory 80GiB --tokens 15.6e12 --devices 16384

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
