#!/usr/bin/env bash
# Installs what consentd needs to build, test and run, and nothing that is already there:
# Debian packages through apt-get, the test tools through npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc g++ make meson ninja-build pkg-config python3 sqlite3
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libphonenumber-dev
      libcurl4-openssl-dev libxml2-dev libsodium-dev libssl-dev libjwt-dev uuid-dev libcmocka-dev
      libicu-dev
      libsmpp34-dev
      postgresql wrk tzdata)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test tools (node --test helpers): only when the lock file changed since the last install.
if [ -f package-lock.json ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error >&2
    fi
fi
