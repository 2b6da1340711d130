#!/usr/bin/env bash
# Makes sure node and npm are installed: the schema tests validate with ajv
# (scripts/ajv-validate.sh installs it from npm into a cache). As root on
# Debian/Ubuntu it installs them with apt; otherwise it says what to install.
set -euo pipefail
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing nodejs npm with apt-get (for the ajv schema tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  exit 0
fi
cat >&2 <<MSG
the schema tests need node and npm (they run ajv): sudo apt-get install nodejs npm
(or run this as root on Debian/Ubuntu and it installs them itself)
MSG
exit 1
