#!/usr/bin/env bash
# Make sure Debian's nginx is installed for the deployment tests (tests/deploy).
#
# The tests run the shipped deploy/nginx/anju.conf.template in a private nginx (own prefix,
# pid and logs under a tmp dir, free loopback port); they never use the system service. When
# the binary (NGINX_PATH, default /usr/sbin/nginx) is missing, install the `nginx` package
# with apt-get (sudo only when not root) without starting the system service. If that fails:
# under CI=true exit non-zero, because CI must run the nginx tests; elsewhere warn and exit 0
# (the tests then skip, naming nginx).
set -uo pipefail

NGINX_PATH="${NGINX_PATH:-/usr/sbin/nginx}"
PACKAGES=(nginx)

ci_value="${CI:-}"
case "${ci_value,,}" in
  1 | true | yes) ci=1 ;;
  *) ci=0 ;;
esac

give_up() {
  if [ "$ci" = 1 ]; then
    echo "ensure_nginx: ERROR: $1" >&2
    echo "ensure_nginx: CI requires nginx at $NGINX_PATH to run the deployment tests." >&2
    exit 1
  fi
  echo "ensure_nginx: WARNING: $1" >&2
  echo "ensure_nginx: nginx tests will be skipped (install: apt-get install ${PACKAGES[*]})." >&2
  exit 0
}

if [ -x "$NGINX_PATH" ]; then
  exit 0
fi

echo "ensure_nginx: nginx not found at $NGINX_PATH; installing ${PACKAGES[*]} with apt-get." >&2

command -v apt-get >/dev/null 2>&1 || give_up "apt-get is not available on this machine."

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || give_up "not root and sudo is not available."
  # In CI there is nobody to type a password: fail instead of waiting for one.
  if [ "$ci" = 1 ]; then as_root=(sudo -n); else as_root=(sudo); fi
fi

# RUNLEVEL=1: invoke-rc.d does not start the packaged service (no system nginx on port 80).
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update \
  || give_up "apt-get update failed."
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
  apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
  || give_up "apt-get install ${PACKAGES[*]} failed."

[ -x "$NGINX_PATH" ] || give_up "installed ${PACKAGES[*]}, but $NGINX_PATH is still missing."
echo "ensure_nginx: installed $("$NGINX_PATH" -v 2>&1 || echo nginx)." >&2
