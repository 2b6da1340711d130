#!/usr/bin/env bash
# Validates JSON documents against a JSON Schema (draft 2020-12) with ajv and
# ajv-formats, an independent validator from the one dbops embeds. Used by the
# schema tests. ajv is installed once into a cache outside the work tree,
# keyed by version.
#
#   scripts/ajv-validate.sh SCHEMA.json DOCS.json
#
# DOCS.json is a JSON array of documents; prints a JSON array with, for each,
# {"valid": bool, "errors": ["/instance/path: message", ...]}. Exit 0 unless
# ajv cannot run (a schema that does not compile, no node).
set -euo pipefail
AJV=8.20.0
AJV_FORMATS=3.0.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dbops/ajv-$AJV-formats-$AJV_FORMATS"
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "ajv-validate: node and npm are needed (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -f "$cache/node_modules/ajv-formats/package.json" ]; then
  mkdir -p "$(dirname "$cache")"
  tmp=$(mktemp -d "$cache.XXXXXX")
  npm install --prefix "$tmp" --no-save --no-audit --no-fund --silent "ajv@$AJV" "ajv-formats@$AJV_FORMATS" >&2
  mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp" # another run won the race
fi
NODE_PATH="$cache/node_modules" exec node "$(dirname "$0")/ajv-validate.js" "$@"
