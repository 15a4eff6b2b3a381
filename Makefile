# bowlsense porcelain. `make demo` runs the main job end to end, `make test` the tests (what CI runs).
# Everything goes through the virtualenv in .venv, created on first use.

PYTHON_SYS ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
SHARED     ?= ../shared
PYTEST_ARGS ?=

# C sources compiled into the Python package through cffi: editing them must rebuild the extension.
CFFI_SOURCES := $(wildcard firmware/frontend/*.[ch] firmware/nn/*.[ch])

.PHONY: help setup setup-system test test-unit bench tables clean
.DEFAULT_GOAL := help

help:
	@echo "make setup   create $(VENV) and install bowlsense (editable) with its dependencies"
	@echo "make setup-system  Debian packages: ARM toolchain, QEMU, clang, espeak-ng (as root)"
	@echo "make test    unit tests and the HIL suite on QEMU (what CI runs)"
	@echo "make demo    the main job end to end: data, teacher, student, int8, C export, firmware, QEMU"
	@echo "make model   regenerate models/default from $(SHARED)/data and $(SHARED)/yamnet"
	@echo "make crossval  4-fold cross-validation of the same recipe (models/crossval, 40-70 min on 2 cores)"
	@echo "make bench   benchmarks, printed as ratios against baselines run side by side"
	@echo "make tables  regenerate the front end's const C tables from FrontendConfig"

$(VENV)/.created:
	$(PYTHON_SYS) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools<81' wheel
	touch $@

# Full install when dependencies change; a fast no-deps rebuild of the cffi extensions when only C changed.
$(VENV)/.deps: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e ".[dev]"
	touch $@ $(VENV)/.ext

$(VENV)/.ext: $(VENV)/.deps setup.py $(CFFI_SOURCES) $(wildcard python/bowlsense/*/_build.py python/bowlsense/_cbuild.py)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

setup-system:
	bash toolchain/install_system_deps.sh

setup: $(VENV)/.ext
	@$(PY) -c "import bowlsense.frontend as f; f.Frontend(); print('bowlsense installed in $(VENV); front end compiled')"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

tables: setup
	$(PY) -m bowlsense.frontend.tables --write

bench: setup
	$(PY) -m bowlsense frontend bench
	$(PY) -m pytest -q -s -p no:cacheprovider tests/test_nn_bench.py

clean:
	rm -rf build out .pytest_cache

# Component makefiles (firmware builds, model pipeline, HIL, demo) live beside their parts.
-include toolchain/*.mk
