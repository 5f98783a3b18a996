# The two commands: `make run` (set up, index, start the chat) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-dev browser index bench docs check clean

run: install
	$(BIN)/assistant index update
	$(BIN)/assistant serve --watch

test: install-dev browser
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site
	$(BIN)/python -m pytest

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first, pinned to the CPU build for the whole install (constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[ui,langchain]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e ".[ui,langchain,dev]"
	touch $@

# Headless Chromium for the browser tests, from Debian (Playwright never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }

index: install
	$(BIN)/assistant index update

bench: install-dev
	$(BIN)/python bench/run_all.py

# The documentation site (mkdocs.yml, pages in docs/) into site/; --strict: a warning fails.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check: install-dev
	$(BIN)/ruff check assistant ui tests bench
	$(BIN)/mypy assistant

clean:
	rm -rf $(VENV) index/CURRENT index/generations index/.lock tests/artifacts site
