#!/usr/bin/env bash
# The one test command (`npm test`, and CI's .ci/run): install, build, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pnpm.sh install --frozen-lockfile
node scripts/build.mjs
npx tsc --noEmit -p tsconfig.json
echo "typecheck ok"
npx jest --ci --maxWorkers=2 "$@"
