# Each target bootstraps .venv from nothing: `make run` and `make test` are the whole quick start.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export QT_API := pyside6

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	# Debian/Ubuntu ship venv's pip bootstrap apart (python3-venv): a venv that failed to be made
	# is removed, the package comes from scripts/system-deps.sh (as root; else it names the line).
	test -x $(PY) || $(PYTHON) -m venv $(VENV) \
		|| { rm -rf $(VENV); scripts/system-deps.sh install python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and exactly pinned: the CPU wheel of 2.13.0 is on disk.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	# main.py first checks Qt can start (app/shell/preflight.py): a display, and the system libraries
	# of its xcb plugin, installed through scripts/system-deps.sh as root, else named.
	$(PY) main.py

test: $(STAMP)
	$(PY) -m ruff check .
	# One worker per core (pytest-xdist): each is its own process with its own QApplication.
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n auto

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
