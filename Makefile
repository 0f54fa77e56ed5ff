# EBM Lab: the two commands of the README are `make book` and `make test`.
# Everything else here is a helper for developers.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch is installed first, pinned; set TORCH_PIP_FLAGS (e.g. an --index-url) to choose its wheel.
TORCH_SPEC := torch==2.13.0
TORCH_PIP_FLAGS ?=
INSTALLED := $(VENV)/.installed
JB_FLAGS := -W -n --keep-going
NOTEBOOKS = $(sort $(wildcard book/*.ipynb) $(wildcard book/exercises/*.ipynb))

.PHONY: book test test-fast lint bench clean constraints venv help

help:
	@echo "make book   - create .venv, install pinned deps, execute every chapter, build the HTML book"
	@echo "make test   - the whole suite: lint, unit/property tests and docstring examples, notebooks (nbval), book build, browser"
	@echo "make test-fast - unit and property tests and docstring examples only (edit-test loop;"
	@echo "                 not the standalone notebook runs in a fresh virtual environment)"
	@echo "make lint | bench | clean | constraints"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --disable-pip-version-check -q $(TORCH_PIP_FLAGS) "$(TORCH_SPEC)"
	$(PIP) install --disable-pip-version-check -q -c constraints.txt -e ".[book,dev,bench]"
	touch $(INSTALLED)

venv: $(INSTALLED)

book: $(INSTALLED)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --builder html $(JB_FLAGS)
	@echo ""
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"

lint: $(INSTALLED)
	$(BIN)/ruff check ebmlab tests benchmarks solutions

test-fast: $(INSTALLED)
	$(BIN)/pytest -m "not book and not browser and not standalone" -q
	$(BIN)/pytest --doctest-modules -q ebmlab

test: $(INSTALLED) lint
	$(BIN)/pytest -m "not book and not browser" -q  # includes the standalone notebook runs
	$(BIN)/pytest --doctest-modules -q ebmlab
	$(BIN)/pytest --nbval-lax --nbval-current-env -p no:randomly -q $(NOTEBOOKS)
	$(MAKE) book
	$(BIN)/pytest -m "book or browser" -q

bench: $(INSTALLED)
	$(BIN)/python benchmarks/run_all.py

constraints: $(BIN)/python
	$(PIP) freeze --exclude-editable | sed 's/+cpu//' | sort -f > constraints.txt.new
	@echo "Review constraints.txt.new, then move it over constraints.txt."

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis dist build *.egg-info
