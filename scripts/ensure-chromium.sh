#!/usr/bin/env bash
# The console's browser test drives Debian's Chromium: install it when it is missing
# (as root, from Debian's packages); fail loudly otherwise. The test is never skipped.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ERROR: /usr/bin/chromium is missing; install Debian's chromium package" >&2
  exit 1
fi
echo "Chromium is missing: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
test -x /usr/bin/chromium
