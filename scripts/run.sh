#!/usr/bin/env bash
# make run: serve on SQLite at ./data/consentd.db; on first start create an account and
# print its API key (shown once: it is stored only as a hash).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/consentd
export CONSENTD_DB="${CONSENTD_DB:-sqlite:./data/consentd.db}"
listen="${CONSENTD_LISTEN:-127.0.0.1:8080}"
mkdir -p data
if [ "$($bin account list | tr -d '[:space:]')" = "[]" ]; then
    out=$($bin account create default --login admin@example.com)
    key=$(printf '%s\n' "$out" | sed -n 's/.*"api_key": "\([^"]*\)".*/\1/p')
    echo "First start: created the account 'default':"
    printf '%s\n\n' "$out"
    echo "API key (shown once, stored only as a hash): $key"
    echo "Try:  curl -s http://$listen/api/v1/contacts -H 'Authorization: Bearer $key'"
    echo
fi
exec $bin serve --listen "$listen"
