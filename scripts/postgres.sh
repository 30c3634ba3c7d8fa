#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests (npm test starts one unless LOCKSTEP_PG_URL is set).
#
#   bash scripts/postgres.sh start DIR   initdb into DIR/data (installing PostgreSQL from the
#                                        distribution's packages first if it is missing and we are
#                                        root), start it on 127.0.0.1 on a free port with trust auth,
#                                        create database lockstep_test, and print its URL on stdout
#                                        (the only stdout line; also written to DIR/url)
#   bash scripts/postgres.sh restart DIR fast shutdown and start again on the same port and data
#                                        (what a database failover or an operator's restart does to
#                                        its clients), waiting until it accepts connections; prints
#                                        the URL again
#   bash scripts/postgres.sh stop DIR    fast shutdown, then remove DIR
#
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user (the one
# the Debian package creates), otherwise as the current user.
set -euo pipefail

# Everything but the URL goes to stderr, so `url=$(bash scripts/postgres.sh start DIR)` works.
exec 3>&1 1>&2

readonly DATABASE=lockstep_test
readonly MARKER=.lockstep-postgres

die() {
  echo "postgres.sh: $*"
  exit 1
}

usage() {
  echo "usage: bash scripts/postgres.sh start DIR | restart DIR | stop DIR"
  exit 2
}

# The directory of the newest server binaries: Debian's /usr/lib/postgresql/<version>/bin, else
# wherever pg_ctl is on PATH (other distributions, Homebrew). Empty if there is none.
find_bindir() {
  local best
  best=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$best" ]]; then
    dirname "$best"
  elif command -v pg_ctl >/dev/null 2>&1; then
    # Through symlinks (e.g. /usr/local/bin/pg_ctl), to the directory holding the other tools too.
    dirname "$(readlink -f "$(command -v pg_ctl)")"
  fi
}

check_tools() {
  local bindir=$1 tool
  for tool in initdb pg_ctl pg_isready psql createdb; do
    [[ -x "$bindir/$tool" ]] || die "$bindir has no $tool: install the PostgreSQL server and client tools (Debian: the postgresql package)"
  done
}

install_postgres() {
  if [[ $EUID -ne 0 ]]; then
    die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres, no pg_ctl on PATH) and only root can install it. Install it (e.g. sudo apt-get install postgresql), or set LOCKSTEP_PG_URL to a server you already run, e.g. LOCKSTEP_PG_URL=postgres://me@127.0.0.1:5432/lockstep_test npm test"
  fi
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and this is not a Debian-like system (no apt-get): install the PostgreSQL server with your package manager, or set LOCKSTEP_PG_URL to an existing server"
  echo "postgres.sh: PostgreSQL is not installed; installing it with apt-get (a minute or two)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
}

# Runs a command as the user that owns the cluster.
as_owner() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

owner_name() {
  if [[ $EUID -eq 0 ]]; then echo postgres; else id -un; fi
}

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

is_running() {
  local bindir=$1 dir=$2
  [[ -f "$dir/data/postmaster.pid" ]] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# Refuses directories we did not create, so `stop` never deletes someone's files.
check_ours() {
  local dir=$1
  [[ -f "$dir/$MARKER" ]] && return 0
  [[ -z "$(ls -A "$dir")" ]] && return 0
  die "$dir is not empty and was not made by this script; give an empty or new directory"
}

start() {
  local dir=$1 bindir user port url attempt
  bindir=$(find_bindir)
  if [[ -z "$bindir" ]]; then
    install_postgres
    bindir=$(find_bindir)
    [[ -n "$bindir" ]] || die "installed the postgresql package but found no server binaries under /usr/lib/postgresql/*/bin"
  fi
  check_tools "$bindir"
  user=$(owner_name)
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: creating the system user postgres to run the server (it refuses to run as root)"
    useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postgres
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  check_ours "$dir"
  touch "$dir/$MARKER"
  if [[ $EUID -eq 0 ]]; then chown postgres: "$dir" "$dir/$MARKER"; fi
  # The server and its tools run from inside DIR: the caller's directory may be closed to them.
  cd "$dir"
  as_owner test -w "$dir" || die "$user cannot write to $dir: every parent directory must be searchable by $user (e.g. use a directory under /tmp)"

  if is_running "$bindir" "$dir" && [[ -f "$dir/url" ]]; then
    cat "$dir/url" >&3
    return 0
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner mkdir -p "$dir/run"
    as_owner "$bindir/initdb" -D "$dir/data" --username="$user" --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(cat "$dir/initdb.log")"
    # Only loopback TCP, and the Unix socket inside DIR (not /var/run/postgresql, which may be
    # missing or belong to a system cluster). Durability settings stay at their defaults (fsync on).
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '${dir//\'/\'\'}/run'"
    } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
  fi

  # The free port can be taken between choosing and binding it: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    # fd 3 is closed for the server: it would otherwise hold the caller's $(…) open forever.
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start </dev/null >/dev/null 3>&-; then
      break
    fi
    [[ $attempt -lt 5 ]] || die "the server did not start: $(tail -n 20 "$dir/server.log" 2>/dev/null)"
    echo "postgres.sh: start on port $port failed, retrying on another port"
  done
  for _ in $(seq 1 60); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.5
  done
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || die "the server started but does not accept connections on 127.0.0.1:$port; see $dir/server.log"

  if [[ "$("$bindir/psql" -X -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$DATABASE"
  fi
  url="postgres://$user@127.0.0.1:$port/$DATABASE"
  echo "$url" >"$dir/url"
  echo "postgres.sh: PostgreSQL $(cat "$dir/data/PG_VERSION") running in $dir (log: $dir/server.log)"
  echo "$url" >&3
}

# Waits until the server on 127.0.0.1:PORT accepts connections (30 s at most).
wait_ready() {
  local bindir=$1 port=$2 dir=$3
  for _ in $(seq 1 60); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then return 0; fi
    sleep 0.5
  done
  die "the server started but does not accept connections on 127.0.0.1:$port; see $dir/server.log"
}

restart() {
  local dir=$1 bindir port
  [[ -f "$dir/$MARKER" && -f "$dir/url" && -f "$dir/data/PG_VERSION" ]] || die "$dir holds no server started by this script (no $MARKER, url or data there): start one first"
  dir=$(cd "$dir" && pwd)
  bindir=$(find_bindir)
  [[ -n "$bindir" ]] || die "PostgreSQL is not installed (no server binaries found)"
  check_tools "$bindir"
  # The same port as before, so every client's connection string still names this server.
  port=$(sed -E 's#^.*:([0-9]+)/[^/]*$#\1#' "$dir/url")
  [[ "$port" =~ ^[0-9]+$ ]] || die "cannot read the port from $dir/url"
  cd "$dir"
  if is_running "$bindir" "$dir"; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || die "the server in $dir did not stop: $(tail -n 20 "$dir/server.log" 2>/dev/null)"
  fi
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start </dev/null >/dev/null 3>&- ||
    die "the server did not start again on port $port (taken meanwhile?): $(tail -n 20 "$dir/server.log" 2>/dev/null)"
  wait_ready "$bindir" "$port" "$dir"
  echo "postgres.sh: PostgreSQL restarted in $dir on port $port"
  cat "$dir/url" >&3
}

stop() {
  local dir=$1 bindir pid
  [[ -d "$dir" ]] || return 0
  dir=$(cd "$dir" && pwd)
  check_ours "$dir"
  cd /
  bindir=$(find_bindir)
  if [[ -f "$dir/data/postmaster.pid" && -n "$bindir" ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  # Still running (no pg_ctl, or it failed, e.g. the cluster belongs to another user): SIGINT is
  # PostgreSQL's fast shutdown. Only if the pid really is this cluster's postmaster: a pid file
  # left by a crash may name an unrelated process by now.
  pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $dir/data"; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$dir"
}

[[ $# -eq 2 && -n "$2" ]] || usage
case "$1" in
  start) start "$2" ;;
  restart) restart "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
