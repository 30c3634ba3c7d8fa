#!/usr/bin/env bash
# The one test command (`npm test`, and CI's .ci/run): install, build, type-check, lint, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pnpm.sh install --frozen-lockfile

# What the tests need outside the repo is made ready in the background while the build and the
# type-check run: a throwaway PostgreSQL for the PostgreSQL adapter's tests (unless LOCKSTEP_PG_URL
# already names one), then Debian's Chromium for the browser tests (installed if missing, unless
# LOCKSTEP_SKIP_BROWSER=1). One after the other: both may need apt-get. PostgreSQL is stopped
# however this script ends.
svc_dir=$(mktemp -d)
pg_dir=$(mktemp -d) # its own: postgres.sh opens it to the postgres user
services=""
cleanup() {
  if [[ -n "$services" ]]; then wait "$services" 2>/dev/null || true; fi
  bash scripts/postgres.sh stop "$pg_dir" 2>/dev/null || true
  rm -rf "$svc_dir" "$pg_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
(
  if [[ -z "${LOCKSTEP_PG_URL:-}" ]]; then bash scripts/postgres.sh start "$pg_dir" > "$svc_dir/pg-url"; fi
  if [[ "${LOCKSTEP_SKIP_BROWSER:-}" != "1" ]]; then bash scripts/chromium.sh > "$svc_dir/chromium"; fi
) &
services=$!

# The build and the type-check at once (two processes for two cores; tsc reads src, not dist).
node scripts/build.mjs &
build=$!
npx tsc --noEmit -p tsconfig.json &
typecheck=$!
wait "$build"
wait "$typecheck"
echo "typecheck ok"
# Structure: no import cycle (type imports counted), the client's layers import only downward, no file over 500 lines.
node scripts/lint.mjs

wait "$services"
services=""
if [[ -z "${LOCKSTEP_PG_URL:-}" ]]; then
  LOCKSTEP_PG_URL=$(cat "$svc_dir/pg-url")
  export LOCKSTEP_PG_URL
fi
npx jest --ci --maxWorkers=2 "$@"
# The attack probe, short form: a reflector in its own process against every attack it must
# withstand (issue 12); it exits non-zero if a figure misses its target. Full run: without --quick.
node scripts/probe/attacks.mjs --quick
# Reconnect after a reflector kill -9, short form (issue 14): resume vs full rejoin, both checked
# end to end (same view objects when resumed, identical replicas); fails on a check, never on timing.
node scripts/bench/reconnect.mjs --quick
# Issue 18's cluster fault test and failover bench, short forms: PostgreSQL (its own, from
# scripts/postgres.sh: the test restarts it) and 3 --cluster nodes as processes on loopback; SIGKILL,
# SIGSTOP (2 s and past the lease), simultaneous first joins, a SIGTERM drain and a PostgreSQL
# restart under load. They fail on a correctness check (a stored log with a gap, a lost, altered
# or duplicated entry, differing replicas, a disconnect on a surviving node, a paused owner that
# sends after its lease), never on timing. Soak: faults.mjs --minutes N; full bench: without --quick.
node scripts/cluster/faults.mjs --quick
node scripts/bench/cluster.mjs --quick
# Issue 15's benches, short forms: each fails on a correctness check (lost or differing messages,
# replicas that differ), never on timing; the figures are for reading. Full runs: without --quick.
node scripts/bench/reflector.mjs --quick
node scripts/bench/throughput.mjs --quick
node scripts/bench/storage.mjs --quick
node scripts/bench/crypto.mjs --quick
node scripts/bench/latejoin.mjs --quick
node scripts/bench/idle.mjs --quick
# Browser tests last, one file at a time (each runs Chromium and a dev server).
if [[ "${LOCKSTEP_SKIP_BROWSER:-}" == "1" ]]; then
  echo "browser tests skipped (LOCKSTEP_SKIP_BROWSER=1)"
else
  LOCKSTEP_CHROMIUM=$(cat "$svc_dir/chromium")
  export LOCKSTEP_CHROMIUM
  npx jest --ci -c e2e/jest.config.cjs --runInBand
fi
