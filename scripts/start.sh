#!/usr/bin/env bash
# `npm start`: install (if needed), build, then run the reflector and the examples dev server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules/.pnpm ]] || [[ pnpm-lock.yaml -nt node_modules/.modules.yaml ]]; then
  bash scripts/pnpm.sh install --frozen-lockfile
fi
node scripts/build.mjs
exec node scripts/dev.mjs --watch "$@"
