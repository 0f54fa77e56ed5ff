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
.PHONY: student lab

help:
	@echo "make book   - create .venv, install pinned deps, execute every chapter, build the HTML book"
	@echo "make test   - the whole suite: lint (ruff, mypy, workflows), unit/property tests and docstring examples, notebooks (nbval), book build, browser"
	@echo "make test-fast - unit and property tests and docstring examples only (edit-test loop;"
	@echo "                 not the standalone notebook runs in a fresh virtual environment)"
	@echo "make lint | bench | clean | constraints"
	@echo "make student - the student edition (no model solutions) in _build/student"
	@echo "make lab     - JupyterLab on the chapters, in the same .venv"

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
	$(BIN)/mypy
	$(WORKFLOW_LINT)

test-fast: $(INSTALLED)
	$(BIN)/pytest -m "not book and not browser and not standalone" -q
	$(BIN)/pytest --doctest-modules -q ebmlab

test: $(INSTALLED) lint
	$(BIN)/pytest -m "not book and not browser" -q  # includes the standalone notebook runs
	$(BIN)/pytest --doctest-modules -q ebmlab
	$(BIN)/pytest --nbval-lax --nbval-current-env -p no:randomly -q $(NOTEBOOKS)
	$(MAKE) book
	$(MAKE) student
	$(BIN)/pytest -m "book or browser" -q

bench: $(INSTALLED)
	$(BIN)/python benchmarks/run_all.py

constraints: $(BIN)/python
	$(PIP) freeze --all --exclude-editable | grep -v '^pip==' | sed 's/+cpu//' | sort -f > constraints.txt.new
	@echo "Review constraints.txt.new, then move it over constraints.txt."

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis dist build *.egg-info

# GitHub workflows: GitHub's JSON schema (offline), then actionlint where it is installed
# (the `ci` extra; its build downloads the binary from GitHub, so the workflows add it).
WORKFLOWS = $(wildcard .github/workflows/*.yml)
define WORKFLOW_LINT
$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
@if [ -x $(BIN)/actionlint ]; then $(BIN)/actionlint $(WORKFLOWS) && echo "actionlint: clean"; \
else echo "actionlint: not installed here (pip install -c constraints.txt -e '.[ci]'); schema check only"; fi
endef

# The student edition: the same book without a model solution in its pages, search index,
# downloadable sources and notebooks (book/_ext/ebmlab_solutions.py). Its Binder and Colab
# buttons open the branch STUDENT_BRANCH; _build/student-branch is what to push there.
STUDENT_BRANCH ?= student
student: $(INSTALLED)
	rm -rf _build/student _build/.student _build/student-branch
	EBMLAB_EDITION=student EBMLAB_STUDENT_BRANCH=$(STUDENT_BRANCH) \
		$(BIN)/jupyter-book build . --builder html $(JB_FLAGS) --path-output _build/.student
	mv _build/.student/_build/html _build/student
	rm -rf _build/.student
	mkdir -p _build/student-branch
	git archive HEAD | tar -x -C _build/student-branch --exclude=solutions
	for nb in $(NOTEBOOKS); do cp _build/student/_sources/$$nb _build/student-branch/$$nb; done
	@echo ""
	@echo "The student edition is built. Open: file://$(CURDIR)/_build/student/index.html"
	@echo "Its launch buttons open the branch '$(STUDENT_BRANCH)': push _build/student-branch there."

# JupyterLab on the chapters and exercises, in the same .venv (the `notebooks` extra).
LAB_INSTALLED := $(VENV)/.lab-installed
$(LAB_INSTALLED): $(INSTALLED)
	$(PIP) install --disable-pip-version-check -q -c constraints.txt -e ".[notebooks]"
	touch $(LAB_INSTALLED)

lab: $(LAB_INSTALLED)
	$(BIN)/jupyter lab book
