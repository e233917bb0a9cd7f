# digest — two commands: `make run` (the service on embedded defaults) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/digest.toml

.PHONY: messages run test install install-test lint typecheck pytest fmt check clean bench browser \
        spamassassin screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: install, migrate, then start scheduler + web on embedded defaults
run: install
	$(BIN)/digest --config $(CONFIG) migrate
	$(BIN)/digest --config $(CONFIG) run

## test: lint, type-check and run the test suite
test: install-test browser spamassassin lint typecheck pytest

lint:
	$(BIN)/ruff check digest tests benchmarks
	$(BIN)/ruff format --check digest tests benchmarks

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

fmt: install-test
	$(BIN)/ruff format digest tests benchmarks
	$(BIN)/ruff check --fix digest tests benchmarks

check: install
	$(BIN)/digest --config $(CONFIG) check

clean:
	rm -rf $(VENV) var build dist *.egg-info

## browser: the real browser for web-page tests (installed from Debian's packages under CI)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$CI" = "true" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "chromium not found: browser tests will be skipped (apt-get install chromium)"; \
	  fi; }

## spamassassin: Debian's spam filter, to score digests with its local rules (installed under CI)
spamassassin:
	@command -v spamassassin >/dev/null 2>&1 || { \
	  if [ "$$CI" = "true" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -q --no-install-recommends spamassassin; \
	  else \
	    echo "spamassassin not found: spam tests will be skipped (apt-get install spamassassin)"; \
	  fi; }

## messages: gather the email templates' translatable strings into every catalogue
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k NP_:1,2 --no-location -o templates/locale/digest.pot .
	$(BIN)/pybabel update -i templates/locale/digest.pot -d templates/locale -D digest \
	  --no-fuzzy-matching --ignore-obsolete

## screenshots: the sample digest in chromium (375/600 px, light/dark, compact) as docs/*.png
screenshots: install-test browser
	$(BIN)/python docs/screenshots.py

## bench: print the benchmarks' ratios against their baselines
bench: install
	$(BIN)/python benchmarks/render_once.py
	$(BIN)/python benchmarks/corpus.py
	$(BIN)/python benchmarks/import.py
	$(BIN)/python benchmarks/send.py --readers 20000 100000 --workers 1 2
