#!/usr/bin/env bash
# Make sure Debian's Chromium and CJK fonts are installed for the browser tests, and poppler's
# pdfsig/pdftotext/pdffonts with NSS's certutil for the agreement PDF tests (marker pdftools;
# the PDFs embed fonts-wqy-microhei).
#
# Playwright drives the system Chromium (CHROMIUM_PATH, default /usr/bin/chromium); it never
# downloads a browser. When the binary, the font or a PDF tool is missing, install the packages
# with apt-get (sudo only when not root). If that fails: under CI=true exit non-zero, because CI
# must run the browser and PDF tests; elsewhere warn and exit 0 (the tests then skip, naming
# what is missing).
set -uo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
PACKAGES=(chromium chromium-l10n fonts-noto-cjk fonts-wqy-microhei poppler-utils libnss3-tools)
WQY_FONT=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
# chromium-l10n: the browser's own words (a file input's 选择文件) in Chinese, as on a phone.
# (Debian's /usr/bin/chromium is a wrapper of /usr/lib/chromium; another CHROMIUM_PATH brings
# its own locales.)
ZH_LOCALE=/usr/lib/chromium/locales/zh-CN.pak
PDF_TOOLS=(pdfsig pdftotext pdffonts certutil)

missing() {
  local what=()
  [ -x "$CHROMIUM_PATH" ] || what+=("$CHROMIUM_PATH")
  [ -f "$WQY_FONT" ] || what+=("$WQY_FONT")
  [ "$CHROMIUM_PATH" != /usr/bin/chromium ] || [ -f "$ZH_LOCALE" ] || what+=("$ZH_LOCALE")
  local tool
  for tool in "${PDF_TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || what+=("$tool")
  done
  echo "${what[*]}"
}

ci_value="${CI:-}"
case "${ci_value,,}" in
  1 | true | yes) ci=1 ;;
  *) ci=0 ;;
esac

give_up() {
  if [ "$ci" = 1 ]; then
    echo "ensure_browser: ERROR: $1" >&2
    echo "ensure_browser: CI requires Chromium at $CHROMIUM_PATH and the PDF tools to run the browser and PDF tests." >&2
    exit 1
  fi
  echo "ensure_browser: WARNING: $1" >&2
  echo "ensure_browser: browser and PDF tests will be skipped (install: apt-get install ${PACKAGES[*]})." >&2
  exit 0
}

absent="$(missing)"
if [ -z "$absent" ]; then
  exit 0
fi

echo "ensure_browser: missing $absent; installing ${PACKAGES[*]} with apt-get." >&2

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

absent="$(missing)"
[ -z "$absent" ] || give_up "installed ${PACKAGES[*]}, but $absent is still missing."
echo "ensure_browser: installed $("$CHROMIUM_PATH" --version 2>/dev/null || echo chromium)." >&2
