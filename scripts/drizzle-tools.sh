#!/usr/bin/env bash
# Installs the drizzle tools the tests run (drizzle-kit, drizzle-orm, pg; exact
# versions) into a cache folder outside the work tree, keyed by the versions,
# and prints that folder (it holds node_modules/). Later runs reuse it.
set -euo pipefail
DRIZZLE_KIT=0.31.11
DRIZZLE_ORM=0.45.4
PG=8.23.1

base=${DBOPS_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dbops/npm}
dir="$base/drizzle-kit-$DRIZZLE_KIT-orm-$DRIZZLE_ORM-pg-$PG"
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "drizzle-tools: $tool not found: install Node.js 18 or later with npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
done
mkdir -p "$base"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(
  cd "$tmp"
  echo '{"name":"dbops-drizzle-tools","private":true}' > package.json
  npm install --no-audit --no-fund --prefer-offline --loglevel=error --save-exact \
    "drizzle-kit@$DRIZZLE_KIT" "drizzle-orm@$DRIZZLE_ORM" "pg@$PG"
) >&2
touch "$tmp/.complete"
# Another run may have finished first: keep whichever landed.
if mv -T "$tmp" "$dir" 2>/dev/null; then trap - EXIT; fi
echo "$dir"
