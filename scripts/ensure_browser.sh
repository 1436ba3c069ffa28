#!/usr/bin/env bash
# Make sure Debian's Chromium and CJK fonts are installed for the browser tests.
#
# Playwright drives the system Chromium (CHROMIUM_PATH, default /usr/bin/chromium); it never
# downloads a browser. When the binary is missing, install chromium and the CJK fonts with
# apt-get (sudo only when not root). If that fails: under CI=true exit non-zero, because CI
# must run the browser tests; elsewhere warn and exit 0 (the tests then skip, naming Chromium).
set -uo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
PACKAGES=(chromium fonts-noto-cjk fonts-wqy-microhei)

ci_value="${CI:-}"
case "${ci_value,,}" in
  1 | true | yes) ci=1 ;;
  *) ci=0 ;;
esac

give_up() {
  if [ "$ci" = 1 ]; then
    echo "ensure_browser: ERROR: $1" >&2
    echo "ensure_browser: CI requires Chromium at $CHROMIUM_PATH to run the browser tests." >&2
    exit 1
  fi
  echo "ensure_browser: WARNING: $1" >&2
  echo "ensure_browser: browser tests will be skipped (install: apt-get install ${PACKAGES[*]})." >&2
  exit 0
}

if [ -x "$CHROMIUM_PATH" ]; then
  exit 0
fi

echo "ensure_browser: Chromium not found at $CHROMIUM_PATH; installing ${PACKAGES[*]} with apt-get." >&2

command -v apt-get >/dev/null 2>&1 || give_up "apt-get is not available on this machine."

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || give_up "not root and sudo is not available."
  # In CI there is nobody to type a password: fail instead of waiting for one.
  if [ "$ci" = 1 ]; then as_root=(sudo -n); else as_root=(sudo); fi
fi

export DEBIAN_FRONTEND=noninteractive
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update \
  || give_up "apt-get update failed."
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  "${PACKAGES[@]}" \
  || give_up "apt-get install ${PACKAGES[*]} failed."

[ -x "$CHROMIUM_PATH" ] || give_up "installed ${PACKAGES[*]}, but $CHROMIUM_PATH is still missing."
echo "ensure_browser: installed $("$CHROMIUM_PATH" --version 2>/dev/null || echo chromium)." >&2
