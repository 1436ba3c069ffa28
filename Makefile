# 安居 Anju — the two commands of the README's Quick start are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Every link the demo makes (QR codes, face and payment callbacks, PDFs) points at SITE_URL
# (core/urls.py): where the demo serves, unless SITE_URL is set. A wildcard HOST (0.0.0.0,
# ::) is no address to open: links then say 127.0.0.1; set SITE_URL=http://<LAN address>:PORT
# for phones on the network. IPv6 hosts get brackets.
ifeq ($(strip $(SITE_URL)),)
SITE_URL := http://$(if $(filter 0.0.0.0 :: [::],$(HOST)),127.0.0.1,$(if $(findstring :,$(HOST)),[$(HOST)],$(HOST))):$(PORT)
endif
# The demo links hashed, gzipped static files (core/staticfiles.py), collected before it serves.
DEMO_ENV := SITE_URL='$(SITE_URL)' ANJU_STATIC_HASHED=1
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test install lint serve format clean

## Install, migrate, load demo data and serve everything on the embedded default.
demo: install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo_load
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	@$(DEMO_ENV) $(PY) manage.py demo_banner --host $(HOST) --port $(PORT)
	$(DEMO_ENV) ANJU_WORKERS_IN_PROCESS=1 $(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application

## The whole suite (installs what the tests need; see scripts/test.sh).
test: install
	@bash scripts/test.sh

install: $(VENV)/.synced node_modules/.installed

# uv is pinned and installed into a private tools venv from PyPI; it then builds .venv from
# uv.lock exactly (--frozen), so every machine gets the same versions in about 2 s.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen --quiet
	@touch $@

# Front-end packages (WeUI) from the npm registry, exactly as locked; never a CDN.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(VENV)/bin/mypy accounts selection signing events sms core
	node_modules/.bin/eslint .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(TOOLS) node_modules var/static
