#!/usr/bin/env bash
# `npm start`: install (if needed), build, then run the reflector and the examples dev server.
# The dev server runs the packages' JavaScript only (the examples are bundled from source), so the
# build leaves the declarations out and skips every package whose dist is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules/.pnpm ]] || [[ pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
  bash scripts/pnpm.sh install --frozen-lockfile
fi
node scripts/build.mjs --js-only --if-changed
exec node scripts/dev.mjs --watch "$@"
