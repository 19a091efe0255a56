#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server on 127.0.0.1 for the tuner's shared-storage test
# (tests/tuner/test_postgres.py), installing Debian's `postgresql` package when it is missing.
#
#   scripts/ci-postgres.sh          # install if needed, start, create role + database, print the URL
#   scripts/ci-postgres.sh stop     # stop the server started here
#
# The server is its own cluster (initdb) in $AIMO_PG_DATA (default /tmp/aimo-pg), owned by the
# `postgres` system user, listening on 127.0.0.1:$AIMO_PG_PORT (default 55432) and on a socket in
# a private folder ($AIMO_PG_DATA/socket, mode 700: only `postgres` may enter it), so it does
# not touch a system cluster. Every login needs a password (scram-sha-256), the socket's too: no
# local process (a sandboxed snippet included) gets in by being local. The superuser's password
# is random, kept in $AIMO_PG_DATA/superuser.pw (mode 600, owner postgres). Role `aimo` (password
# `aimo`, no superuser) owns database `aimo_tune`. A cluster made by an older version of this
# script (trusting local logins) is recreated. Idempotent: running it again on a running server
# only makes sure the role and database exist. `make test` stops it after the tests (trap).
# The test reads AIMO_PG_URL, defaulting (under CI=true) to the URL printed last.
set -euo pipefail

PORT="${AIMO_PG_PORT:-55432}"
DATA="${AIMO_PG_DATA:-/tmp/aimo-pg}"
SOCK="$DATA/socket"
URL="postgresql://aimo:aimo@127.0.0.1:${PORT}/aimo_tune"

as_postgres() { runuser -u postgres -- "$@"; }

pg_bin() {
  local ver
  ver="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$ver" ] && [ -x "/usr/lib/postgresql/$ver/bin/initdb" ] && echo "/usr/lib/postgresql/$ver/bin"
}

BIN="$(pg_bin || true)"

if [ "${1:-start}" = "stop" ]; then
  if [ -n "$BIN" ] && [ -f "$DATA/db/postmaster.pid" ]; then
    as_postgres "$BIN/pg_ctl" -D "$DATA/db" -m fast -w stop
  fi
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  echo "ci-postgres.sh: run as root (it installs packages and runs the server as 'postgres')" >&2
  exit 1
fi

if [ -z "$BIN" ]; then
  echo "ci-postgres.sh: installing PostgreSQL from Debian packages ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BIN="$(pg_bin)"
fi

mkdir -p "$DATA" "$SOCK"
chown postgres:postgres "$DATA" "$SOCK"
chmod 700 "$DATA" "$SOCK"
PWFILE="$DATA/superuser.pw"

if [ -f "$DATA/db/PG_VERSION" ] && { [ ! -s "$PWFILE" ] || grep -Eq '^[^#]*[[:space:]]trust([[:space:]]|$)' "$DATA/db/pg_hba.conf"; }; then
  echo "ci-postgres.sh: recreating $DATA/db (it trusted local logins)" >&2
  if [ -f "$DATA/db/postmaster.pid" ]; then
    as_postgres "$BIN/pg_ctl" -D "$DATA/db" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$DATA/db"
fi

if [ ! -f "$DATA/db/PG_VERSION" ]; then
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$PWFILE")
  chown postgres:postgres "$PWFILE"
  as_postgres "$BIN/initdb" -D "$DATA/db" -U postgres --pwfile="$PWFILE" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
fi

if ! as_postgres "$BIN/pg_ctl" -D "$DATA/db" status >/dev/null 2>&1; then
  as_postgres "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c max_connections=100 -c fsync=off" start \
    >/dev/null
fi

psql_local() {
  PGPASSWORD="$(cat "$PWFILE")" as_postgres "$BIN/psql" -h "$SOCK" -p "$PORT" -U postgres \
    -v ON_ERROR_STOP=1 -qtA "$@"
}

if [ "$(psql_local -c "SELECT 1 FROM pg_roles WHERE rolname = 'aimo'")" != "1" ]; then
  psql_local -c "CREATE ROLE aimo LOGIN PASSWORD 'aimo'"
fi
if [ "$(psql_local -c "SELECT 1 FROM pg_database WHERE datname = 'aimo_tune'")" != "1" ]; then
  psql_local -c "CREATE DATABASE aimo_tune OWNER aimo"
fi

"$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -t 30 >/dev/null
echo "PostgreSQL ready: export AIMO_PG_URL=$URL"
