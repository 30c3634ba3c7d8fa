#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests (playwright-core drives it; it
# cannot download a browser of its own here) and prints its path. Installs with apt-get when it is
# missing: as root, or through sudo when that works without a password.
set -euo pipefail
bin=${LOCKSTEP_CHROMIUM:-/usr/bin/chromium}
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "Chromium is not installed at $bin and this user cannot install it: run 'apt-get install chromium' as root, or set LOCKSTEP_CHROMIUM to a Chromium binary" >&2
  exit 1
fi
echo "installing Debian's chromium for the browser tests…" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
if [[ ! -x "$bin" ]]; then
  echo "apt-get installed chromium, but $bin is still missing" >&2
  exit 1
fi
echo "$bin"
