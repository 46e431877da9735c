# Every target creates .venv if missing and installs the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/mtlneuron demo

test: setup
	$(PY) -m pytest -q --nbmake tests notebooks

bench: setup
	$(PY) benchmarks/generate_throughput.py
	$(PY) benchmarks/surrogate_speed.py --cells 1,50,1000 --checkpoint data/l5pc.pt

clean:
	rm -rf out .pytest_cache
