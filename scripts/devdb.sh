#!/usr/bin/env bash
# devdb.sh: the project's private PostgreSQL cluster, used when DATABASE_URL is not set.
#
#   scripts/devdb.sh ensure   create the cluster on first use, start it if stopped (idempotent)
#   scripts/devdb.sh url DB   print a connection URL for database DB (default: rebate), after ensure
#   scripts/devdb.sh fresh DB drop and create benchmark database DB (rebate_bench*), print its URL
#   scripts/devdb.sh stop     stop the cluster if it runs
#
# The cluster lives under .data/pg in the repository (git-ignored), listens on a unix socket in that
# directory and on 127.0.0.1:$REBATE_PG_PORT (default 54329), and trusts local connections only.
# As root the server runs as the `postgres` user, because initdb and postgres refuse to run as root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_root="${REBATE_PG_DIR:-$root/.data/pg}"
pgdata="$data_root/data"
sockdir="$data_root/run"
port="${REBATE_PG_PORT:-54329}"
log="$data_root/postgres.log"

die() { echo "devdb: $*" >&2; exit 1; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then echo "$PG_BINDIR"; return 0; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

install_postgres() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "devdb: PostgreSQL server binaries not found; installing the postgresql package with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    die "PostgreSQL server binaries (initdb, postgres) are missing: install the 'postgresql' package (for example 'sudo apt-get install postgresql'), or set DATABASE_URL to a server you run."
  fi
}

# as_owner runs a command as the cluster's owner: postgres when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure() {
  local bindir
  bindir="$(find_bindir)" || { install_postgres; bindir="$(find_bindir)" || die "PostgreSQL was installed but initdb is still not found; set PG_BINDIR."; }
  mkdir -p "$data_root"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' system user to own the cluster (it comes with the postgresql package)."
    chown postgres: "$data_root"
    # postgres must be able to reach the data directory through the repository's parents.
    local p="$data_root"
    while [ "$p" != "/" ]; do p="$(dirname "$p")"; chmod o+x "$p" 2>/dev/null || true; done
  fi
  exec 9>"$data_root/.lock"
  flock 9
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    echo "devdb: creating a private PostgreSQL cluster in $pgdata" >&2
    as_owner mkdir -p "$pgdata" "$sockdir"
    as_owner "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null 2>"$data_root/initdb.err" \
      || as_owner "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null \
      || die "initdb failed: $(cat "$data_root/initdb.err")"
    cat >>"$pgdata/postgresql.conf" <<CONF
# rebate ledger private cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 2GB
max_wal_size = 4GB
CONF
  fi
  as_owner mkdir -p "$sockdir"
  if ! as_owner "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    touch "$log"; [ "$(id -u)" = 0 ] && chown postgres: "$log"
    # The server must not inherit our descriptors (the lock, or a CI runner's pipe, which would keep
    # the runner waiting for the server to exit), so start it from a subshell that closes them all.
    (
      for fd in /proc/self/fd/*; do n="${fd##*/}"; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-" 2>/dev/null; done
      as_owner "$bindir/pg_ctl" -D "$pgdata" -o "-p $port" -l "$log" -w -t 60 start </dev/null >/dev/null 2>&1
    ) || die "PostgreSQL did not start; see $log"
  fi
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || die "PostgreSQL is not accepting connections on 127.0.0.1:$port; see $log"
  # The serving role and its login (least privilege: docs/operations.md); rebate migrate grants it
  # its privileges in each database.
  "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -q \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rebate_app') THEN CREATE ROLE rebate_app NOLOGIN; END IF; END \$\$" \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rebate_service') THEN CREATE ROLE rebate_service LOGIN IN ROLE rebate_app; END IF; END \$\$" \
    >/dev/null 2>&1 || true
  for db in rebate rebate_bench; do
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "create database $db" >/dev/null 2>&1 || true
    fi
  done
}

case "${1:-ensure}" in
  ensure) ensure ;;
  url)
    ensure
    # url DB [service]: the owner's URL (migrations, tests), or the serving login's.
    user=postgres; [ "${3:-}" = service ] && user=rebate_service
    echo "postgres://$user@127.0.0.1:$port/${2:-rebate}?sslmode=disable" ;;
  fresh)
    # Benchmarks start from an empty database: one that keeps every earlier run grows past memory,
    # and its runs then measure its size rather than the code (docs/benchmarks.md).
    db="${2:-rebate_bench}"
    case "$db" in rebate_bench*) ;; *) die "fresh only recreates benchmark databases (rebate_bench*), not $db" ;; esac
    ensure
    bindir="$(find_bindir)" || die "psql not found"
    "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "drop database if exists $db with (force)" -qc "create database $db" >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/$db?sslmode=disable" ;;
  stop)
    if [ -f "$pgdata/PG_VERSION" ]; then
      bindir="$(find_bindir)" || die "initdb not found"
      as_owner "$bindir/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 && echo "devdb: stopped" || echo "devdb: not running"
    fi ;;
  *) die "usage: $0 ensure|url [db]|fresh [db]|stop" ;;
esac
