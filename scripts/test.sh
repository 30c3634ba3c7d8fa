#!/usr/bin/env bash
# The one test command (`npm test`, and CI's .ci/run): install, build, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pnpm.sh install --frozen-lockfile
node scripts/build.mjs
npx tsc --noEmit -p tsconfig.json
echo "typecheck ok"
# The PostgreSQL adapter's tests need a real server: start a throwaway one (installing PostgreSQL
# if needed) unless LOCKSTEP_PG_URL already names one, and stop it however this script ends.
if [[ -z "${LOCKSTEP_PG_URL:-}" ]]; then
  pg_dir=$(mktemp -d)
  trap 'bash scripts/postgres.sh stop "$pg_dir" || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  LOCKSTEP_PG_URL=$(bash scripts/postgres.sh start "$pg_dir")
  export LOCKSTEP_PG_URL
fi
npx jest --ci --maxWorkers=2 "$@"
