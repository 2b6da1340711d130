#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, postgres), pg_dump and
# redis-server are installed, so tests and the demo can start throwaway
# servers, a C compiler for cgo (dbops' SQL parser, pg_query_go), and node/npm
# for the tests that run drizzle's tools. As root on
# Debian/Ubuntu it installs them with apt without starting any service;
# otherwise it says what to install. It never starts a server itself.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
  compgen -G '/usr/pgsql-*/bin/initdb' >/dev/null && return 0
  return 1
}
have_redis() { command -v redis-server >/dev/null 2>&1; }
have_pg_dump() { command -v pg_dump >/dev/null 2>&1; }

missing=()
have_postgres || missing+=(postgresql)
have_redis || missing+=(redis-server)
have_pg_dump || missing+=(postgresql-client)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# node + npm: the drizzle tests run the real drizzle-kit and drizzle-orm
# (installed, cached, by scripts/drizzle-tools.sh)
{ command -v node && command -v npm; } >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get (no service is started)" >&2
  # Keep package scripts from starting servers or creating a default cluster:
  # dbops' tests start their own throwaway servers on random ports.
  policy=/usr/sbin/policy-rc.d
  restore_policy=""
  [ -e "$policy" ] && restore_policy=$(mktemp) && cp "$policy" "$restore_policy"
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/dbops-no-main.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$restore_policy" ]; then mv "$restore_policy" "$policy"; else rm -f "$policy"; fi
  exit 0
fi

cat >&2 <<MSG
dbops needs these packages to start throwaway servers: ${missing[*]}
Install them, e.g.:  sudo apt-get install ${missing[*]}
(or run this as root on Debian/Ubuntu and it installs them itself)
MSG
exit 1
