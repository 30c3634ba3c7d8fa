#!/usr/bin/env bash
# A cluster of reflector nodes on loopback, for trying a cluster out and for tests by hand.
#
#   bash scripts/cluster.sh start DIR [N] [-- EXTRA...]
#       PostgreSQL (scripts/postgres.sh, in DIR/pg) and N nodes (default 3), each
#       `lockstep-reflector --cluster --postgres URL --node-url ws://127.0.0.1:PORT/` on a free
#       port, with EXTRA flags appended (e.g. -- --lease-ms 3000 --log-level warn). Logs in
#       DIR/node-K.log, PIDs in DIR/node-K.pid, the node URLs in DIR/urls (one a line) and on
#       stdout (the only stdout lines), the PostgreSQL URL in DIR/pg/url. Returns once every node
#       listens; on a failure it stops what it started and exits 1.
#   bash scripts/cluster.sh stop DIR
#       SIGTERM to every node (each drains), SIGKILL to what is left after 20 s, PostgreSQL's fast
#       stop, then removes DIR.
#
# Build first (node scripts/build.mjs). Only the processes this script started are signalled: by
# the PIDs in DIR, and only while such a PID still runs that node's command line.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROOT=$PWD
readonly MARKER=.lockstep-cluster
readonly CLI=$ROOT/reflector/bin/lockstep-reflector.js
readonly STOP_BOUND_S=20
readonly START_BOUND_S=30

# Everything but the URLs goes to stderr.
exec 3>&1 1>&2

die() {
  echo "cluster.sh: $*"
  exit 1
}

usage() {
  echo "usage: bash scripts/cluster.sh start DIR [N] [-- EXTRA_FLAGS...] | stop DIR"
  exit 2
}

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Whether PID runs node K of DIR: a reflector process with that node's --node-url.
is_our_node() {
  local pid=$1 url=$2
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "lockstep-reflector.js --cluster" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--node-url $url "
}

stop_nodes() {
  local dir=$1 k pid url pids=()
  [[ -f "$dir/urls" ]] || return 0
  k=0
  while read -r url; do
    k=$((k + 1))
    pid=$(cat "$dir/node-$k.pid" 2>/dev/null || true)
    if is_our_node "$pid" "$url"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done <"$dir/urls"
  [[ ${#pids[@]} -gt 0 ]] || return 0
  for _ in $(seq 1 $((STOP_BOUND_S * 10))); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster.sh: node pid $pid still running after ${STOP_BOUND_S} s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# A start that fails part-way stops what it started (the logs stay in DIR).
START_DIR=""
START_OK=0
on_start_exit() {
  if [[ $START_OK -eq 0 && -n "$START_DIR" ]]; then
    echo "cluster.sh: start failed; stopping what it started (logs kept in $START_DIR)"
    stop_nodes "$START_DIR"
    bash "$ROOT/scripts/postgres.sh" stop "$START_DIR/pg" || true
  fi
}

start() {
  local dir=$1 n=$2 pg_url k port url pid
  shift 2
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "N must be a number of nodes from 1 to 99, not '$n'"
  [[ -x "$(command -v node)" ]] || die "node is not on PATH"
  [[ -f "$ROOT/reflector/dist/cli.js" ]] || die "the reflector is not built: run node scripts/build.mjs first"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -n "$(ls -A "$dir")" ]]; then die "$dir is not empty: give a new or empty directory"; fi
  touch "$dir/$MARKER"
  # postgres.sh runs the server as the postgres user when we are root: it must reach DIR/pg.
  chmod 755 "$dir"
  START_DIR=$dir
  trap on_start_exit EXIT
  pg_url=$(bash "$ROOT/scripts/postgres.sh" start "$dir/pg")
  : >"$dir/urls"
  for k in $(seq 1 "$n"); do
    port=$(free_port)
    url="ws://127.0.0.1:$port/"
    echo "$url" >>"$dir/urls"
    # Detached from this script: the nodes outlive it, until `stop`.
    nohup node "$CLI" --cluster --postgres "$pg_url" --node-url "$url" --port "$port" --host 127.0.0.1 "$@" \
      >"$dir/node-$k.log" 2>&1 </dev/null 3>&- &
    echo $! >"$dir/node-$k.pid"
  done
  k=0
  while read -r url; do
    k=$((k + 1))
    pid=$(cat "$dir/node-$k.pid")
    for _ in $(seq 1 $((START_BOUND_S * 10))); do
      grep -qF "listening on $url" "$dir/node-$k.log" 2>/dev/null && break
      if ! kill -0 "$pid" 2>/dev/null; then
        die "node $k exited before listening: $(tail -n 5 "$dir/node-$k.log")"
      fi
      sleep 0.1
    done
    grep -qF "listening on $url" "$dir/node-$k.log" || die "node $k did not listen within ${START_BOUND_S} s (log: $dir/node-$k.log)"
  done <"$dir/urls"
  START_OK=1
  echo "cluster.sh: $n nodes on PostgreSQL $pg_url (logs in $dir)"
  cat "$dir/urls" >&3
}

stop() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd)
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by this script (no $MARKER): not touching it"
  stop_nodes "$dir"
  bash "$ROOT/scripts/postgres.sh" stop "$dir/pg" || true
  rm -rf "$dir"
}

[[ $# -ge 2 && -n "$2" ]] || usage
case "$1" in
  start)
    dir=$2
    n=3
    shift 2
    if [[ $# -gt 0 && "$1" != "--" ]]; then
      n=$1
      shift
    fi
    if [[ $# -gt 0 ]]; then
      [[ "$1" == "--" ]] || usage
      shift
    fi
    start "$dir" "$n" "$@"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
  *) usage ;;
esac
