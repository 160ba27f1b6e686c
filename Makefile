# The project's front door: `make demo` runs the benchmark, `make test` runs the tests (and builds the docs).
# Both install what they need into .venv first (pins from constraints.txt).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint docs docs-serve demo browser-deps

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,k8s,docs]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The documentation site (mkdocs.yml, docs/): every warning is an error, so a broken link or a reference to
# code that moved fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve -a 127.0.0.1:8001

# The browser suite (tests/browser, marker `browser`) drives Debian's Chromium through its driver; both are
# installed here when missing (as root, else through sudo). Without them: `.venv/bin/pytest -m "not browser"`.
BROWSER_PACKAGES := chromium chromium-driver fonts-liberation
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PACKAGES); \
	fi

test: $(STAMP) lint docs browser-deps
	$(VENV)/bin/pytest -q

demo: $(STAMP)
	$(VENV)/bin/geofm demo
