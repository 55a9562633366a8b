#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests: data in a fresh temp directory, listening on 127.0.0.1 only (no
# unix socket), trust authentication from 127.0.0.1 only, a database `shoal_test`, fsync off.
#
#   scripts/postgres.sh start    start one (or join the running one) and print its URL on stdout
#   scripts/postgres.sh env      print `export SHOAL_TEST_PG_URL=…` for eval "$(scripts/postgres.sh env)"
#   scripts/postgres.sh url      print the URL of the running server
#   scripts/postgres.sh status   exit 0 when the server of the state file is running
#   scripts/postgres.sh stop     stop it (pg_ctl stop -m fast) and remove its data directory
#   scripts/postgres.sh stop -f  the same, even while other callers still use it
#
# State (data dir, port, user, URL, callers) lives in $SHOAL_PG_STATE (default ${TMPDIR:-/tmp}/shoal-pg.state);
# set it to run several independent servers. Callers running at the same time (two test runs) share one
# server: `start` records the calling process, and `stop` leaves the server running while another
# recorded caller is still alive. initdb and postgres refuse to run as root, so as root they run as the
# `postgres` system user, or a `shoal-pg` system user created on first use.
set -euo pipefail

state=${SHOAL_PG_STATE:-${TMPDIR:-/tmp}/shoal-pg.state}
db_name=shoal_test

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# A process as pid:start-time (start time so that a reused pid is not mistaken for the caller).
proc_id() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20) || return 1
  [ -n "$st" ] && echo "$1:$st"
}

# The caller: the shell or script that ran us. `url=$(scripts/postgres.sh start)` execs us straight from
# the command substitution, so a test script is the caller of both its `start` and its `stop`.
me=$(proc_id "$PPID" || echo "$PPID:0")
# When we are the last command of the caller's shell, bash execs us in place: then we are the caller.
self=$(proc_id "$$" || echo "$$:0")

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  die "PostgreSQL server binaries not found (apt-get install postgresql)"
}

# The user the server runs as: ourselves when not root.
pg_user() {
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  if ! id shoal-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin shoal-pg >/dev/null
  fi
  echo shoal-pg
}

# Runs a command as the server user.
as_user() {
  local user=$1; shift
  if [ "$(id -u)" != 0 ]; then "$@"; return; fi
  if command -v runuser >/dev/null 2>&1; then runuser -u "$user" -- "$@"; else su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"; fi
}

free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Serializes start/stop of the same state file.
lock() {
  exec 9>"$state.lock"
  flock -w 120 9 || die "could not lock $state.lock"
}

read_state() {
  PG_BIN='' PG_USER='' PG_TMP='' PG_DATA='' PG_PORT='' PG_URL='' PG_PID='' PG_OWNERS=''
  [ -f "$state" ] || return 1
  # shellcheck disable=SC1090
  . "$state"
  [ -n "$PG_DATA" ] && [ -n "$PG_URL" ]
}

write_state() {
  {
    echo "PG_BIN=$(printf '%q' "$PG_BIN")"
    echo "PG_USER=$(printf '%q' "$PG_USER")"
    echo "PG_TMP=$(printf '%q' "$PG_TMP")"
    echo "PG_DATA=$(printf '%q' "$PG_DATA")"
    echo "PG_PORT=$PG_PORT"
    echo "PG_URL=$(printf '%q' "$PG_URL")"
    echo "PG_PID=$PG_PID"
    echo "PG_OWNERS=$(printf '%q' "$PG_OWNERS")"
  } >"$state.new"
  mv -f "$state.new" "$state"
}

# Recorded callers still alive, leaving out this caller.
live_owners() {
  local o out=()
  for o in $PG_OWNERS; do
    [ "$o" = "$me" ] || [ "$o" = "$self" ] && continue
    if [ "$(proc_id "${o%%:*}" 2>/dev/null)" = "$o" ]; then out+=("$o"); fi
  done
  echo "${out[*]:-}"
}

running() {
  read_state || return 1
  [ -d "$PG_DATA" ] || return 1
  as_user "$PG_USER" "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

cmd_start() {
  lock
  if running; then
    local others
    others=$(live_owners)
    PG_OWNERS="${others:+$others }$me"
    write_state
    log "already running (state $state), used by $PG_OWNERS"
    echo "$PG_URL"
    return
  fi
  if [ -f "$state" ]; then log "removing stale state $state"; really_stop; fi

  local bin user tmp data port locale url
  bin=$(pg_bin)
  user=$(pg_user)
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-pg.XXXXXX")
  chmod 0755 "$tmp"
  data="$tmp/data"
  mkdir -p "$data"
  chown -R "$user" "$tmp"
  chmod 0700 "$data"
  port=$(free_port)

  locale=C
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
  log "initdb in $data as $user ($bin)"
  as_user "$user" "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale="$locale" \
    >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; rm -rf -- "$tmp"; die "initdb failed"; }

  # Trust from 127.0.0.1 only: no socket, no other address, nothing else in pg_hba.conf.
  printf 'host all all 127.0.0.1/32 trust\n' >"$data/pg_hba.conf"
  cat >>"$data/postgresql.conf" <<EOF

# scripts/postgres.sh: a throwaway test server
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  chown "$user" "$data/pg_hba.conf" "$data/postgresql.conf"

  url="postgres://postgres@127.0.0.1:$port/$db_name"
  PG_BIN=$bin PG_USER=$user PG_TMP=$tmp PG_DATA=$data PG_PORT=$port PG_URL=$url PG_PID='' PG_OWNERS=$me
  write_state

  log "starting on 127.0.0.1:$port"
  # 9>&-: the server must not inherit the lock, or it would hold it for its whole life.
  as_user "$user" "$bin/pg_ctl" -D "$data" -l "$tmp/server.log" -w -t 60 start >/dev/null 9>&- \
    || { cat "$tmp/server.log" >&2 || true; really_stop; die "postgres did not start"; }
  PG_PID=$(head -n 1 "$data/postmaster.pid")
  write_state

  "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "create database $db_name" >/dev/null || { really_stop; die "could not create database $db_name"; }
  echo "$url"
}

cmd_stop() {
  lock
  if ! read_state; then log "not running (no state $state)"; return 0; fi
  if [ "${1:-}" != "-f" ]; then
    local others
    others=$(live_owners)
    if [ -n "$others" ]; then
      PG_OWNERS=$others
      write_state
      log "still used by $others: left running (stop -f stops it anyway)"
      return 0
    fi
  fi
  really_stop
  log "stopped"
}

# Stops the server of the state file (if any) and removes its directory and the state.
really_stop() {
  if ! read_state; then rm -f "$state"; return 0; fi
  if [ -d "$PG_DATA" ]; then
    as_user "$PG_USER" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  case "$PG_TMP" in
    "${TMPDIR:-/tmp}"/shoal-pg.*) rm -rf -- "$PG_TMP" ;;
    *) log "not removing unexpected directory $PG_TMP" ;;
  esac
  rm -f "$state"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  url) running || die "not running"; echo "$PG_URL" ;;
  env) running || die "not running"; echo "export SHOAL_TEST_PG_URL=$(printf '%q' "$PG_URL")" ;;
  status) if running; then log "running: $PG_URL (used by: ${PG_OWNERS:-nobody})"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop [-f]|url|env|status" >&2; exit 2 ;;
esac
