#!/usr/bin/env bash
# The whole suite, as `make test` runs it (the Makefile has installed .venv and node_modules).
#
# PostgreSQL and Redis are used when they answer at DATABASE_URL / REDIS_URL (defaults below).
# Outside CI a missing service is reported and the tests that need it skip; under CI=true a
# missing service fails the run. Chromium and CJK fonts, and nginx, are installed through apt when
# missing.
set -uo pipefail
cd "$(dirname "$0")/.."

is_ci() { [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; }

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Tests flush their Redis database between tests, so they use db 15, not the app's db 0.
export REDIS_URL="${REDIS_URL-redis://127.0.0.1:6379/15}"
export DEBUG=1 SMS_PROVIDER=console
# Bytecode is cached: a machine that sets PYTHONDONTWRITEBYTECODE (this one does) otherwise
# recompiles, in every test worker, live server and bench process, every module it imports,
# and pytest rewrites the asserts of every test module again: 10.5 s of collection per
# worker against 1.6 s with the cache (measured here).
unset PYTHONDONTWRITEBYTECODE

have_pg=yes have_redis=yes have_browser=yes have_nginx=yes
if [[ "$DATABASE_URL" == postgres* ]] && ! .venv/bin/python scripts/services.py postgres; then
  if is_ci; then echo "FAIL: PostgreSQL does not answer at $DATABASE_URL (required under CI)"; exit 1; fi
  echo "note: PostgreSQL does not answer at $DATABASE_URL; running on SQLite, PostgreSQL-only tests skip"
  export DATABASE_URL="sqlite:///$(pwd)/var/test.sqlite3"
  have_pg=no
fi
if [[ -n "$REDIS_URL" ]] && ! .venv/bin/python scripts/services.py redis; then
  if is_ci; then echo "FAIL: Redis does not answer at $REDIS_URL (required under CI)"; exit 1; fi
  echo "note: Redis does not answer at $REDIS_URL; using the in-memory layer, Redis tests skip"
  export REDIS_URL=""
  have_redis=no
fi
[[ -n "$REDIS_URL" ]] || have_redis=no
if ! bash scripts/ensure_browser.sh; then
  is_ci && exit 1
  have_browser=no
fi
if ! bash scripts/ensure_nginx.sh; then
  is_ci && exit 1
fi
[[ -x "${NGINX_PATH:-/usr/sbin/nginx}" ]] || have_nginx=no

# Two test processes (pytest-xdist): the suite is half waiting (browsers, live servers, lock
# timeouts, clocks), so two workers on two cores finish in well under the one-process time.
# Each worker has its own test database (pytest-django's test_<name>_gwN) and its own Redis
# database and channel prefix (tests/conftest.py). ANJU_TEST_WORKERS=0 runs in one process.
# --dist worksteal: xdist's default (load) hands each worker a queue up front, and one worker
# was left with all the browser tests, running alone for the last five of nine minutes while
# the other sat idle; with worksteal an idle worker takes half of the other's queue.
.venv/bin/pytest -q -p no:cacheprovider -n "${ANJU_TEST_WORKERS:-2}" --dist worksteal "$@"
status=$?
echo "anju tests: exit $status (PostgreSQL: $have_pg, Redis: $have_redis, Chromium: $have_browser, nginx: $have_nginx)"
exit $status
